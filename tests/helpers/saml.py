"""Drive the sandbox IdP over HTTP (``requests``, no browser), as a person at the login page would.

SP-initiated flow::

    post = obtain_saml_response(platform, http, user_uid="usr-1", group_uid="cld-1")
    response = post_saml_response(http, post)      # POST to the app's ACS, no redirects followed
    # or both at once: sso_login(platform, http, ...)

IdP-initiated flow: ``idp_initiated_response(platform, user_uid=..., group_uid=...)`` (the
membership must exist: ``tests.helpers.platform.add_member`` or a previous login).

The IdP login form (``POST /sandbox/idp/login``, CSRF protected) has these fields:

=======================  =============================================================
``SAMLRequest``          hidden: the AuthnRequest, as received (deflated + base64)
``RelayState``           hidden: echoed back to the ACS
``user_uid``             ``usr-…``; existing = that user, unknown = created, blank = new uid
``user_name``            first name (a new user without one: Jane)
``user_surname``         surname (new user: Doe)
``user_email``           email (new user: ``<uid>@example.com``)
``user_country``         ISO 3166-1 alpha-2
``user_company_name``    the user's own company name
``group_uid``            ``cld-…``; existing = that group, unknown = created, blank = new uid
                         (the ``group_id`` GET parameter of the SSO request preselects it)
``group_name``           new group without one: ``Company <uid>``
``group_email``          principal email of the group
``group_currency``       ISO 4217 (``AUD``)
``group_country``        ISO 3166-1 alpha-2
``group_city``           city
``group_timezone``       Olson name
``group_free_trial_end`` ISO date or date-time (``2030-01-31`` or ``2030-01-31T12:00:00Z``)
``group_has_credit_card````"true"``, ``"false"`` or ``""`` (keep)
``role``                 ``Guest``, ``Member``, ``Power User``, ``Admin``, ``Super Admin``
=======================  =============================================================

Blank fields keep an existing user's or group's values. Submitting makes the user a member of
the group with ``role``, makes the group use the app, opens a platform session and answers a
page whose form (``id="saml-post"``) auto-submits ``SAMLResponse`` and ``RelayState`` to the ACS.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urljoin

import requests
from lxml import etree
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from tests.helpers.certificates import KeyPair, make_key_pair

DEFAULT_INIT_PATH = "/maestrano/auth/saml/init"
LOGIN_FORM_PATH = "/sandbox/idp/login"
TIMEOUT = 10
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True)
class SamlPost:
    """What the IdP's auto-submit page would POST to the app's ACS."""

    acs_url: str
    saml_response: str  # base64, as in the form
    relay_state: str = ""

    @property
    def xml(self) -> str:
        return base64.b64decode(self.saml_response).decode()

    def with_xml(self, xml: str | bytes) -> SamlPost:
        raw = xml.encode() if isinstance(xml, str) else xml
        return replace(self, saml_response=base64.b64encode(raw).decode())

    @property
    def form_data(self) -> dict[str, str]:
        data = {"SAMLResponse": self.saml_response}
        if self.relay_state:
            data["RelayState"] = self.relay_state
        return data


class _FormParser(HTMLParser):
    """Collects forms: ``{"id", "action", "method", "fields": {name: value}}``."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "id": values.get("id", ""),
                    "action": values.get("action", ""),
                    "method": values.get("method", "get").lower(),
                    "fields": {},
                }
            )
        elif tag in ("input", "textarea", "select") and self.forms and values.get("name"):
            if values.get("type") in ("submit", "button"):
                return
            self.forms[-1]["fields"].setdefault(values["name"], values.get("value", ""))


def parse_form(html: str, form_id: str) -> dict[str, Any]:
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if form["id"] == form_id:
            return form
    raise AssertionError(f"No form #{form_id} in the page:\n{html[:2000]}")


def form_posting_to(html: str, action: str) -> dict[str, Any]:
    """The form of ``html`` whose action is ``action`` (sandbox page buttons)."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if form["action"] == action:
            return form
    raise AssertionError(f"No form posting to {action} in the page:\n{html[:2000]}")


def _check(response: requests.Response, expected: int, what: str) -> None:
    if response.status_code != expected:
        raise AssertionError(
            f"{what}: expected HTTP {expected}, got {response.status_code}: {response.text[:2000]}"
        )


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


# --- Driving the IdP ------------------------------------------------------------------
def login_page_url(
    platform: Any,
    http_session: requests.Session,
    *,
    init_path: str = DEFAULT_INIT_PATH,
    extra_init_params: dict[str, str] | None = None,
) -> str:
    """GET the app's SSO init URL and return where it redirects (the IdP, with the request)."""
    init_url = f"{platform.url}{init_path}"
    if extra_init_params:
        init_url += "?" + urlencode(extra_init_params)
    response = http_session.get(init_url, allow_redirects=False, timeout=TIMEOUT)
    if response.status_code not in (301, 302, 303, 307):
        raise AssertionError(
            f"SSO init {init_url}: expected a redirect, got {response.status_code}: "
            f"{response.text[:1000]}"
        )
    return urljoin(init_url, response.headers["Location"])


def submit_login(
    http_session: requests.Session,
    login_url: str,
    *,
    user_uid: str | None = None,
    email: str | None = None,
    name: str | None = None,
    surname: str | None = None,
    country: str | None = None,
    group_uid: str | None = None,
    group_name: str | None = None,
    role: str = "Admin",
    free_trial_end: dt.datetime | dt.date | str | None = None,
    has_credit_card: bool | None = None,
    currency: str | None = None,
    extra_fields: dict[str, str] | None = None,
) -> SamlPost:
    """Open the IdP login page at ``login_url``, fill it in, and parse the auto-submit form.

    Does NOT post the SAML Response to the app (see :func:`post_saml_response`). Arguments
    left ``None`` are sent blank: an existing user/group keeps its values, a new one gets
    the IdP's defaults. ``user_uid=None`` logs in a new random user.
    """
    page = http_session.get(login_url, timeout=TIMEOUT)
    _check(page, 200, f"IdP login page {login_url}")
    form = parse_form(page.text, "idp-login")
    user_uid = user_uid or f"usr-{secrets.token_hex(4)}"
    if isinstance(free_trial_end, dt.datetime):
        free_trial_end = free_trial_end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(free_trial_end, dt.date):
        free_trial_end = free_trial_end.isoformat()
    fields = {
        **form["fields"],
        "user_uid": user_uid,
        "user_name": name or "",
        "user_surname": surname or "",
        "user_email": email or "",
        "user_country": country or "",
        "group_uid": group_uid if group_uid is not None else form["fields"].get("group_uid", ""),
        # Tests name new users and groups on purpose: create what does not exist.
        "create_missing": "on",
        "group_name": group_name or "",
        "group_currency": currency or "",
        "group_free_trial_end": free_trial_end or "",
        "group_has_credit_card": "" if has_credit_card is None else str(has_credit_card).lower(),
        "role": role,
        **(extra_fields or {}),
    }
    response = http_session.post(
        urljoin(login_url, form["action"]),
        data=fields,
        headers={"Referer": login_url},
        timeout=TIMEOUT,
    )
    _check(response, 200, "IdP login form")
    return _saml_post_from_page(response)


def _saml_post_from_page(response: requests.Response) -> SamlPost:
    form = parse_form(response.text, "saml-post")
    return SamlPost(
        acs_url=form["action"],
        saml_response=form["fields"]["SAMLResponse"],
        relay_state=form["fields"].get("RelayState", ""),
    )


def obtain_saml_response(
    platform: Any,
    http_session: requests.Session,
    *,
    init_path: str = DEFAULT_INIT_PATH,
    extra_init_params: dict[str, str] | None = None,
    **login: Any,
) -> SamlPost:
    """SP-initiated: GET the app's init URL, log in at the IdP (``login`` = :func:`submit_login`
    keyword arguments), return the Response the IdP would post, without posting it."""
    login_url = login_page_url(
        platform, http_session, init_path=init_path, extra_init_params=extra_init_params
    )
    return submit_login(http_session, login_url, **login)


def post_saml_response(http_session: requests.Session, post: SamlPost) -> requests.Response:
    """POST the Response to the ACS like the auto-submit form; redirects are not followed."""
    return http_session.post(
        post.acs_url, data=post.form_data, allow_redirects=False, timeout=TIMEOUT
    )


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
    return _saml_post_from_page(response)


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
