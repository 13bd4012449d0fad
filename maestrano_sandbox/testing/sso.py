"""A single sign-on through the sandbox's IdP over HTTP, as a browser without JavaScript does it.

SP-initiated, step by step::

    login_url = login_page_url(platform, http)           # GET the app's init: its redirect
    post = submit_login(http, login_url, user_uid=...)   # the IdP's sign-in form, filled in
    consume = post_saml_response(http, post)             # the auto-submit form, to the ACS
    completion = complete(http, consume)                 # the consume view's 303, followed

or all of it: ``login(platform, http, user_uid=..., group_uid=...)`` (the completion's
answer: 302 when logged in), or ``Platform.login`` (the logged-in ``requests.Session``).

The IdP's sign-in form (``/sandbox/idp/login``) takes: ``user_uid`` (an existing user, or
a new one with that uid: ``create_missing``), the user's ``user_name``, ``user_surname``,
``user_email``, ``user_country``; ``group_uid`` (the same), ``group_name``,
``group_currency``, ``group_free_trial_end`` (ISO date or time),
``group_has_credit_card`` (``"true"``, ``"false"``, ``""`` keeps it); ``role`` (``Guest``,
``Member``, ``Power User``, ``Admin``, ``Super Admin``). Blank fields keep an existing
user's or group's values. Submitting makes the user a member of the group with that role,
has the group use the app, opens a platform session and answers the page whose form
(``id="saml-post"``) posts ``SAMLResponse`` and ``RelayState`` to the app's ACS.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin

import requests

#: The default preset's SSO start (``sso.init_path``).
DEFAULT_INIT_PATH = "/maestrano/auth/saml/init"
TIMEOUT = 10


class AppHost(Protocol):
    """What the SSO start needs of a platform: the app's root URL (``Platform.url``)."""

    @property
    def url(self) -> str: ...


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


def _form(html: str, *, attribute: str, value: str, what: str) -> dict[str, Any]:
    """The first form of ``html`` whose ``attribute`` is ``value`` (AssertionError naming
    ``what`` if none)."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if form[attribute] == value:
            return form
    raise AssertionError(f"No {what} in the page:\n{html[:2000]}")


def parse_form(html: str, form_id: str) -> dict[str, Any]:
    """The form ``form_id`` of the page, as its fields would be sent (AssertionError if none)."""
    return _form(html, attribute="id", value=form_id, what=f"form #{form_id}")


def form_posting_to(html: str, action: str) -> dict[str, Any]:
    """The form of ``html`` whose action is ``action`` (sandbox page buttons)."""
    return _form(html, attribute="action", value=action, what=f"form posting to {action}")


def expect_status(response: requests.Response, expected: int, what: str) -> None:
    """AssertionError, with the start of the page, unless ``response`` has that status."""
    if response.status_code != expected:
        raise AssertionError(
            f"{what}: expected HTTP {expected}, got {response.status_code}: {response.text[:2000]}"
        )


def login_page_url(
    platform: AppHost,
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
    expect_status(page, 200, f"IdP login page {login_url}")
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
        # Users and groups named on purpose: create what does not exist.
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
    expect_status(response, 200, "IdP login form")
    return saml_post_from_page(response)


def saml_post_from_page(response: requests.Response) -> SamlPost:
    """The SAML Response of the IdP's auto-submit page (``form#saml-post``)."""
    form = parse_form(response.text, "saml-post")
    return SamlPost(
        acs_url=form["action"],
        saml_response=form["fields"]["SAMLResponse"],
        relay_state=form["fields"].get("RelayState", ""),
    )


def obtain_saml_response(
    platform: AppHost,
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


def complete(http: requests.Session, consume_response: requests.Response) -> requests.Response:
    """Follow the consume view's 303 to the completion view (no further redirects)."""
    if consume_response.status_code != 303:
        raise AssertionError(
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


def login(platform: AppHost, http: requests.Session, **kwargs: Any) -> requests.Response:
    """A whole SP-initiated login (``kwargs``: those of :func:`obtain_saml_response`);
    returns the completion view's answer (302 when logged in)."""
    post = obtain_saml_response(platform, http, **kwargs)
    return deliver(http, post)
