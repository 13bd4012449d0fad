"""The app side of an SSO login over HTTP: post to the ACS, follow to the completion view.

The consume view answers ``303`` to ``/maestrano/auth/saml/complete?ticket=…``
(see ``maestrano_accounts.views``); ``complete``, ``deliver`` and ``login`` follow that hop
like a browser would (they ship with the sandbox, ``maestrano_sandbox.testing.sso``). This module
adds the logout and crafted Responses for security tests (edited, then signed again with
the IdP's own key so that only the app's binding checks can refuse them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants

from maestrano_sandbox.testing.sso import complete, deliver, login
from tests.helpers.saml import SamlPost, form_posting_to, resign

__all__ = ["complete", "deliver", "login"]

TIMEOUT = 10
NS = {"samlp": OneLogin_Saml2_Constants.NS_SAMLP, "saml": OneLogin_Saml2_Constants.NS_SAML}


def logout(
    platform: Any, http: requests.Session, *, path: str = "/maestrano/logout"
) -> requests.Response:
    """Log out as the "Log out" button does: the confirmation page, then its CSRF form (POST)."""
    page = http.get(f"{platform.url}{path}", timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:500]
    form = form_posting_to(page.text, path)
    return http.post(
        f"{platform.url}{path}", data=form["fields"], allow_redirects=False, timeout=TIMEOUT
    )


def edited(post: SamlPost, edit: Callable[[etree._Element], None], key_pair: Any) -> SamlPost:
    """``post`` with ``edit(root)`` applied, then re-signed with ``key_pair`` (trusted or not)."""
    root = etree.fromstring(post.xml.encode())
    edit(root)
    return post.with_xml(resign(etree.tostring(root), key_pair))


def find(root: etree._Element, path: str) -> list[etree._Element]:
    return root.xpath(path, namespaces=NS)
