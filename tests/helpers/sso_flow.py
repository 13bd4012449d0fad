"""The app side of an SSO login over HTTP: post to the ACS, follow to the completion view.

The consume view answers ``303`` to ``/maestrano/auth/saml/complete?ticket=…``
(see ``maestrano_accounts.views``); these helpers follow that hop like a browser would, and
build crafted Responses for security tests (edited, then signed again with the
IdP's own key so that only the app's binding checks can refuse them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import requests
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants

from tests.helpers.saml import (
    SamlPost,
    form_posting_to,
    obtain_saml_response,
    post_saml_response,
    resign,
)

TIMEOUT = 10
NS = {"samlp": OneLogin_Saml2_Constants.NS_SAMLP, "saml": OneLogin_Saml2_Constants.NS_SAML}


def complete(http: requests.Session, consume_response: requests.Response) -> requests.Response:
    """Follow the consume view's 303 to the completion view (no further redirects)."""
    assert consume_response.status_code == 303, (
        f"consume answered {consume_response.status_code}: {consume_response.text[:500]}"
    )
    url = urljoin(consume_response.url, consume_response.headers["Location"])
    return http.get(url, allow_redirects=False, timeout=TIMEOUT)


def deliver(http: requests.Session, post: SamlPost) -> requests.Response:
    """POST ``post`` to the ACS and, if accepted, complete: the last response of the two."""
    consume = post_saml_response(http, post)
    if consume.status_code != 303:
        return consume
    return complete(http, consume)


def login(platform: Any, http: requests.Session, **kwargs: Any) -> requests.Response:
    """A whole SP-initiated login; returns the completion view's answer (302 when logged in)."""
    post = obtain_saml_response(platform, http, **kwargs)
    return deliver(http, post)


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
