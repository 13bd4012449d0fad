"""Drive the sandbox IdP over HTTP (``requests``, no browser), as a person at the login page would.

The SSO steps ship with the sandbox (``maestrano_sandbox.testing.sso``, where the IdP's login
form and its fields are described) and are re-exported here; this module adds what only these tests
need: SP settings and AuthnRequests built without the app, Responses validated or tampered
with, IdP-initiated launches.

SP-initiated flow::

    post = obtain_saml_response(platform, http, user_uid="usr-1", group_uid="cld-1")
    response = post_saml_response(http, post)      # POST to the app's ACS, no redirects followed
    # or both at once: sso_login(platform, http, ...)

IdP-initiated flow: ``idp_initiated_response(platform, user_uid=..., group_uid=...)`` (the
membership must exist: ``platform.add_member`` or a previous login).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import requests
from lxml import etree
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from maestrano_sandbox.testing.sso import (
    DEFAULT_INIT_PATH,
    TIMEOUT,
    SamlPost,
    form_posting_to,
    login_page_url,
    obtain_saml_response,
    parse_form,
    post_saml_response,
    saml_post_from_page,
    submit_login,
)
from maestrano_sandbox.testing.sso import expect_status as _check
from tests.helpers.certificates import KeyPair, make_key_pair

__all__ = [
    "DEFAULT_INIT_PATH",
    "SamlPost",
    "form_posting_to",
    "login_page_url",
    "obtain_saml_response",
    "parse_form",
    "post_saml_response",
    "submit_login",
]

LOGIN_FORM_PATH = "/sandbox/idp/login"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


# --- SP side, without the app ------------------------------------------------------
def sp_settings(
    platform: Any,
    *,
    metadata: dict[str, Any] | None = None,
    certificate: str | None = None,
    strict: bool = True,
) -> OneLogin_Saml2_Settings:
    """python3-saml SP settings built only from the app's metadata and the IdP certificate.

    ``metadata`` defaults to the app's live metadata endpoint (basic auth).
    """
    if metadata is None:
        response = requests.get(
            f"{platform.url}/maestrano/metadata", auth=platform.auth, timeout=TIMEOUT
        )
        _check(response, 200, "metadata")
        metadata = response.json()
    sso, api = metadata["sso"], metadata["api"]
    return OneLogin_Saml2_Settings(
        {
            "strict": strict,
            "sp": {
                "entityId": api["id"],
                "assertionConsumerService": {
                    "url": sso["idm"] + sso["consume_path"],
                    "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
                },
                "NameIDFormat": sso["name_id_format"],
            },
            "idp": {
                "entityId": sso["idp"],
                "singleSignOnService": {
                    "url": f"{api['host']}{api['base']}auth/saml",
                    "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
                },
                "x509cert": certificate
                if certificate is not None
                else (sso.get("x509_certificate") or platform.keys.certificate_pem),
            },
            "security": {
                "wantAssertionsSigned": True,
                "wantMessagesSigned": True,
                "rejectDeprecatedAlgorithm": False,
            },
        },
        sp_validation_only=True,
    )


def authn_request_url(
    platform: Any,
    *,
    app: Any = None,
    acs_url: str | None = None,
    relay_state: str | None = None,
    params: dict[str, str] | None = None,
) -> tuple[str, str]:
    """``(IdP URL with a python3-saml AuthnRequest, request id)``, as an app's init would build.

    ``app`` is a sandbox ``RegisteredApp`` (default: ``platform.app``).
    """
    app = app or platform.app
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": app.api_id,
                "assertionConsumerService": {
                    "url": acs_url or app.acs_url,
                    "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
                },
            },
            "idp": {
                "entityId": platform.sandbox_url,
                "singleSignOnService": {
                    "url": f"{platform.sandbox_url}/api/v1/auth/saml",
                    "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
                },
                "x509cert": platform.keys.certificate_pem,
            },
        },
        sp_validation_only=True,
    )
    request = OneLogin_Saml2_Authn_Request(settings)
    query = {"SAMLRequest": request.get_request()}
    if relay_state:
        query["RelayState"] = relay_state
    query.update(params or {})
    return f"{platform.sandbox_url}/api/v1/auth/saml?{urlencode(query)}", request.get_id()


def validate_response(
    platform: Any,
    post: SamlPost,
    *,
    request_id: str | None = None,
    settings: OneLogin_Saml2_Settings | None = None,
) -> tuple[bool, str | None, dict[str, list[str]]]:
    """Validate ``post`` as a python3-saml SP would: ``(is_valid, error, attributes)``."""
    settings = settings or sp_settings(platform)
    scheme, _, rest = post.acs_url.partition("://")
    host, _, path = rest.partition("/")
    request_data = {
        "https": "on" if scheme == "https" else "off",
        "http_host": host,
        "script_name": "/" + path,
        "post_data": post.form_data,
    }
    response = OneLogin_Saml2_Response(settings, post.saml_response)
    valid = response.is_valid(request_data, request_id=request_id)
    return valid, response.get_error(), response.get_attributes() if valid else {}


# --- Driving the IdP (the steps: maestrano_sandbox.testing.sso) ---------------------------------
def sso_login(
    platform: Any, http_session: requests.Session, **kwargs: Any
) -> tuple[SamlPost, requests.Response]:
    """:func:`obtain_saml_response` then :func:`post_saml_response`."""
    post = obtain_saml_response(platform, http_session, **kwargs)
    return post, post_saml_response(http_session, post)


def idp_initiated_response(
    platform: Any,
    *,
    user_uid: str,
    group_uid: str,
    app: Any = None,
    http_session: requests.Session | None = None,
    relay_state: str = "",
) -> SamlPost:
    """An unsolicited Response (no InResponseTo): "open the app as this member of this group"."""
    app = app or platform.app
    http = http_session or requests.Session()
    query = {"user": user_uid, "group": group_uid}
    if relay_state:
        query["RelayState"] = relay_state
    response = http.get(
        f"{platform.sandbox_url}/apps/{app.api_id}/launch", params=query, timeout=TIMEOUT
    )
    _check(response, 200, "IdP-initiated launch")
    return saml_post_from_page(response)


# --- Tampering, for security tests -------------------------------------------------------
def resign(
    xml: str | bytes,
    key_pair: KeyPair,
    *,
    algorithm: str = "sha256",
    sign_assertion: bool = True,
    sign_response: bool = True,
) -> str:
    """Strip the signatures of a Response and sign it again with ``key_pair``."""
    sign_algorithm, digest = {
        "sha256": (OneLogin_Saml2_Constants.RSA_SHA256, OneLogin_Saml2_Constants.SHA256),
        "sha1": (OneLogin_Saml2_Constants.RSA_SHA1, OneLogin_Saml2_Constants.SHA1),
    }[algorithm]
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    for signature in root.iter(f"{{{DSIG_NS}}}Signature"):
        signature.getparent().remove(signature)
    assertion = root.find(f"{{{OneLogin_Saml2_Constants.NS_SAML}}}Assertion")
    if sign_assertion and assertion is not None:
        signed = OneLogin_Saml2_Utils.add_sign(
            etree.tostring(assertion),
            key_pair.private_key_pem,
            key_pair.certificate_pem,
            sign_algorithm=sign_algorithm,
            digest_algorithm=digest,
        )
        root.replace(assertion, etree.fromstring(signed))
    result = etree.tostring(root)
    if sign_response:
        result = OneLogin_Saml2_Utils.add_sign(
            result,
            key_pair.private_key_pem,
            key_pair.certificate_pem,
            sign_algorithm=sign_algorithm,
            digest_algorithm=digest,
        )
    return result.decode() if isinstance(result, bytes) else result


def sign_with_other_key(post: SamlPost, *, common_name: str = "attacker-idp") -> SamlPost:
    """The same Response, signed (Assertion and Response) by a key the app does not trust."""
    return post.with_xml(resign(post.xml, make_key_pair(common_name)))


def change_attribute(post: SamlPost, name: str, new_value: str) -> SamlPost:
    """The Response with one attribute's value replaced, signatures left as they were."""
    root = etree.fromstring(post.xml.encode())
    path = (
        f".//{{{OneLogin_Saml2_Constants.NS_SAML}}}Attribute[@Name='{name}']"
        f"/{{{OneLogin_Saml2_Constants.NS_SAML}}}AttributeValue"
    )
    node = root.find(path)
    if node is None:
        raise AssertionError(f"No attribute {name!r} in the Response")
    node.text = new_value
    return post.with_xml(etree.tostring(root))
