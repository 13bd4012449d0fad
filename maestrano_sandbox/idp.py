"""The sandbox identity provider: read AuthnRequests, build and sign SAML Responses
(docs/protocol.md, 'Consume').

Signatures are made by python3-saml (xmlsec); nothing here does cryptography by
hand. Both the Assertion and the Response are signed, with the key pair of the
app's ``signature_algorithm`` (2048-bit rsa-sha256, or the historical 1024-bit
rsa-sha1).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import secrets
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from .keys import IdpKeyPair, MissingKeyPair, key_pair_for_algorithm
from .models import Group, GroupMembership, PlatformSession, PlatformUser, RegisteredApp
from .sessions import iso_utc, recheck_time

logger = logging.getLogger(__name__)

#: A real AuthnRequest is a few hundred bytes; refuse anything much larger before inflating.
MAX_SAML_REQUEST_CHARS = 64 * 1024
MAX_INFLATED_BYTES = 256 * 1024
DEFAULT_ASSERTION_LIFETIME_SECONDS = 300
#: NotBefore is set this far in the past, for SPs whose clock runs a little behind ours.
NOT_BEFORE_SKEW_SECONDS = 60

NAMESPACES = {"samlp": Saml.NS_SAMLP, "saml": Saml.NS_SAML}
SIGNING_ALGORITHMS = {
    "sha256": (Saml.RSA_SHA256, Saml.SHA256),
    "sha1": (Saml.RSA_SHA1, Saml.SHA1),
}
ATTRIBUTE_NAME_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


class IdpError(Exception):
    """A request the IdP refuses; ``status`` is the HTTP status of the error page."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidAuthnRequest(IdpError):
    """The SAMLRequest cannot be decoded, parsed or is not an AuthnRequest we accept."""


class UnknownApp(IdpError):
    status = 404


class NotSetUp(IdpError):
    """The IdP's signing keys are missing: only the set-up command makes them."""

    status = 503


def signature_algorithm(app: RegisteredApp) -> str:
    """The algorithm the IdP signs ``app``'s logins with (``sha256`` unless it asked for sha1)."""
    return app.signature_algorithm if app.signature_algorithm in SIGNING_ALGORITHMS else "sha256"


def signing_key_pair(app: RegisteredApp) -> IdpKeyPair:
    """The key pair the IdP signs ``app``'s logins with, and whose certificate it announces.

    The one place a request learns that the sandbox was never set up: a missing pair is
    :class:`NotSetUp` (503), whose message names the set-up command, never a 500. Every
    endpoint that needs the pair (the SSO page, the login, the launch, the developer
    platform's marketplaces) asks here, and asks before it writes anything.
    """
    try:
        return key_pair_for_algorithm(signature_algorithm(app))
    except MissingKeyPair as error:
        raise NotSetUp(str(error)) from None


@dataclass(frozen=True)
class AuthnRequestInfo:
    """What the IdP keeps from an accepted AuthnRequest."""

    id: str
    app: RegisteredApp
    acs_url: str


# --- AuthnRequest -------------------------------------------------------------
def _inflate(raw: bytes) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        inflated = inflater.decompress(raw, MAX_INFLATED_BYTES)
    except zlib.error:
        # Some SPs send the HTTP-Redirect payload without deflating it.
        if raw.lstrip().startswith(b"<"):
            return raw
        raise InvalidAuthnRequest(
            "SAMLRequest is not deflated XML (HTTP-Redirect binding: deflate, then base64)."
        ) from None
    if inflater.unconsumed_tail:
        raise InvalidAuthnRequest("SAMLRequest is too large.")
    return inflated


def parse_authn_request(*, saml_request: str) -> AuthnRequestInfo:
    """Decode, parse and check an HTTP-Redirect AuthnRequest; find the app by its Issuer.

    Raises :class:`InvalidAuthnRequest` (400) or :class:`UnknownApp` (404) with a
    message a developer can act on.
    """
    if not saml_request:
        raise InvalidAuthnRequest("Missing SAMLRequest parameter.")
    if len(saml_request) > MAX_SAML_REQUEST_CHARS:
        raise InvalidAuthnRequest("SAMLRequest is too large.")
    try:
        raw = base64.b64decode("".join(saml_request.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAuthnRequest("SAMLRequest is not valid base64.") from None
    xml = _inflate(raw)
    try:
        document = OneLogin_Saml2_XML.to_etree(xml)
    except Exception:  # lxml raises several types for broken or hostile XML
        raise InvalidAuthnRequest("SAMLRequest is not well-formed XML.") from None
    if document.tag != f"{{{Saml.NS_SAMLP}}}AuthnRequest":
        raise InvalidAuthnRequest("SAMLRequest is not a samlp:AuthnRequest.")
    if isinstance(OneLogin_Saml2_XML.validate_xml(document, "saml-schema-protocol-2.0.xsd"), str):
        raise InvalidAuthnRequest(
            "SAMLRequest does not follow the SAML 2.0 protocol schema "
            "(ID, Version, IssueInstant and element order are required)."
        )
    request_id = document.get("ID", "")
    issuers = document.xpath("saml:Issuer/text()", namespaces=NAMESPACES)
    issuer = issuers[0].strip() if issuers else ""
    if not issuer:
        raise InvalidAuthnRequest("AuthnRequest has no Issuer (it must be the app's api id).")
    app = RegisteredApp.objects.filter(api_id=issuer).first()
    if app is None:
        raise UnknownApp(
            f"No application with api id {issuer!r} is registered with this sandbox. "
            "Register it first (sandbox home page or `manage.py sandbox_register_app`)."
        )
    acs_url = document.get("AssertionConsumerServiceURL") or app.acs_url
    if acs_url != app.acs_url:
        raise InvalidAuthnRequest(
            f"AssertionConsumerServiceURL {acs_url!r} does not match the ACS URL registered "
            f"for {app.api_id} ({app.acs_url!r}). Refresh the app's metadata if it moved."
        )
    return AuthnRequestInfo(id=request_id, app=app, acs_url=acs_url)


# --- Response -------------------------------------------------------------------
def idp_entity_id(request: HttpRequest) -> str:
    """The IdP entity id: where the sandbox is mounted, e.g. ``http://127.0.0.1:8000/sandbox``.

    It equals the default ``sso.idp`` of an app preset (``api.host``).
    ``settings.MAESTRANO_SANDBOX["IDP_ENTITY_ID"]`` overrides it (behind a proxy).
    """
    configured = settings.MAESTRANO_SANDBOX.get("IDP_ENTITY_ID")
    if configured:
        return str(configured).rstrip("/")
    return request.build_absolute_uri(reverse("maestrano_sandbox:home")).rstrip("/")


_iso = _saml_time = iso_utc


def _new_id() -> str:
    return f"_{secrets.token_hex(20)}"


def user_attributes(*, session: PlatformSession) -> dict[str, str]:
    """Every attribute of docs/protocol.md, 'Assertion attributes', for the
    session's user, group and app, as strings."""
    user: PlatformUser = session.user
    group: Group = session.group
    membership = GroupMembership.objects.filter(group=group, user=user).first()
    role = membership.role if membership else "Guest"
    free_trial_end = group.free_trial_end_at or group.created_at
    group_email = group.email or user.email
    organizations = [
        {"id": m.group.uid, "name": m.group.name, "role": m.role}
        for m in user.memberships.select_related("group").order_by("group__uid")
    ]
    return {
        "mno_uid": user.uid,
        "mno_session": session.token,
        "mno_session_recheck": _iso(recheck_time()),
        "group_uid": group.uid,
        "group_name": group.name,
        "group_end_free_trial": _iso(free_trial_end),
        "group_role": role,
        "group_has_credit_card": "true" if group.has_credit_card else "false",
        "group_email": group_email,
        "group_currency": group.currency,
        "group_timezone": group.timezone,
        "group_country": group.country,
        "group_city": group.city,
        "group_org_uid": "org-" + group.uid.removeprefix("cld-"),
        "uid": user.uid,
        "virtual_uid": user.virtual_uid(group),
        "email": user.email,
        "virtual_email": user.virtual_email(group),
        "name": user.name,
        "surname": user.surname,
        "country": user.country,
        "company_name": user.company_name,
        "app_owner": "true" if role in ("Admin", "Super Admin") else "false",
        "organizations": json.dumps(organizations),
    }


def _element(parent: etree._Element | None, tag: str, text: str | None = None, **attrs: str):
    prefix, _, local = tag.partition(":")
    qname = f"{{{NAMESPACES[prefix]}}}{local}"
    node = (
        etree.Element(qname, nsmap=NAMESPACES)
        if parent is None
        else etree.SubElement(parent, qname)
    )
    for key, value in attrs.items():
        node.set(key, value)
    if text is not None:
        node.text = text
    return node


def _assertion_xml(
    *,
    session: PlatformSession,
    issuer: str,
    acs_url: str,
    in_response_to: str | None,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> etree._Element:
    app = session.app
    not_before = _saml_time(now - dt.timedelta(seconds=NOT_BEFORE_SKEW_SECONDS))
    not_on_or_after = _saml_time(now + lifetime)
    assertion = _element(
        None,
        "saml:Assertion",
        ID=_new_id(),
        Version="2.0",
        IssueInstant=_saml_time(now),
    )
    _element(assertion, "saml:Issuer", issuer)
    subject = _element(assertion, "saml:Subject")
    _element(
        subject,
        "saml:NameID",
        session.user.uid,
        Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    )
    confirmation = _element(subject, "saml:SubjectConfirmation", Method=Saml.CM_BEARER)
    data = {"NotOnOrAfter": not_on_or_after, "Recipient": acs_url}
    if in_response_to:
        data["InResponseTo"] = in_response_to
    _element(confirmation, "saml:SubjectConfirmationData", **data)
    conditions = _element(
        assertion, "saml:Conditions", NotBefore=not_before, NotOnOrAfter=not_on_or_after
    )
    restriction = _element(conditions, "saml:AudienceRestriction")
    _element(restriction, "saml:Audience", app.api_id)
    statement = _element(
        assertion,
        "saml:AuthnStatement",
        AuthnInstant=_saml_time(now),
        SessionIndex=f"_{session.token}",
        SessionNotOnOrAfter=_saml_time(now + dt.timedelta(hours=8)),
    )
    context = _element(statement, "saml:AuthnContext")
    _element(context, "saml:AuthnContextClassRef", AUTHN_CONTEXT)
    attributes = _element(assertion, "saml:AttributeStatement")
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    for name, value in user_attributes(session=session).items():
        attribute = _element(
            attributes, "saml:Attribute", Name=name, NameFormat=ATTRIBUTE_NAME_FORMAT
        )
        node = etree.SubElement(
            attribute,
            f"{{{Saml.NS_SAML}}}AttributeValue",
            nsmap={"xs": "http://www.w3.org/2001/XMLSchema", "xsi": xsi},
        )
        node.set(f"{{{xsi}}}type", "xs:string")
        node.text = value
    return assertion


def sign_xml(xml: str | bytes, *, key_pair: IdpKeyPair, algorithm: str = "sha256") -> bytes:
    """Sign the root element (Response or Assertion) with python3-saml; signature after Issuer."""
    sign_algorithm, digest_algorithm = SIGNING_ALGORITHMS[algorithm]
    signed = OneLogin_Saml2_Utils.add_sign(
        xml,
        key_pair.private_key_pem,
        key_pair.certificate_pem,
        sign_algorithm=sign_algorithm,
        digest_algorithm=digest_algorithm,
    )
    return signed if isinstance(signed, bytes) else signed.encode()


def build_signed_response(
    *,
    session: PlatformSession,
    issuer: str,
    in_response_to: str | None = None,
    acs_url: str | None = None,
    sign_assertion: bool = True,
    sign_response: bool = True,
) -> str:
    """The SAML Response XML for ``session``, signed as the app's registration asks.

    ``in_response_to`` is the AuthnRequest ID (``None`` for an IdP-initiated launch).
    """
    app = session.app
    acs_url = acs_url or app.acs_url
    algorithm = signature_algorithm(app)
    key_pair = signing_key_pair(app)
    now = timezone.now()
    lifetime = dt.timedelta(
        seconds=int(
            settings.MAESTRANO_SANDBOX.get(
                "ASSERTION_LIFETIME_SECONDS", DEFAULT_ASSERTION_LIFETIME_SECONDS
            )
        )
    )
    assertion = _assertion_xml(
        session=session,
        issuer=issuer,
        acs_url=acs_url,
        in_response_to=in_response_to,
        now=now,
        lifetime=lifetime,
    )
    if sign_assertion:
        assertion = OneLogin_Saml2_XML.to_etree(
            sign_xml(etree.tostring(assertion), key_pair=key_pair, algorithm=algorithm)
        )
    response_attrs = {
        "ID": _new_id(),
        "Version": "2.0",
        "IssueInstant": _saml_time(now),
        "Destination": acs_url,
    }
    if in_response_to:
        response_attrs["InResponseTo"] = in_response_to
    response = _element(None, "samlp:Response", **response_attrs)
    _element(response, "saml:Issuer", issuer)
    status = _element(response, "samlp:Status")
    _element(status, "samlp:StatusCode", Value=Saml.STATUS_SUCCESS)
    response.append(assertion)
    xml = etree.tostring(response)
    if sign_response:
        xml = sign_xml(xml, key_pair=key_pair, algorithm=algorithm)
    logger.info(
        "Issued SAML response",
        extra={
            "app": app.api_id,
            "user": session.user.uid,
            "group": session.group.uid,
            "in_response_to": in_response_to or "",
            "algorithm": algorithm,
        },
    )
    return xml.decode()


def encode_response(xml: str) -> str:
    """Base64 of the Response, as the HTTP-POST binding sends it."""
    return base64.b64encode(xml.encode()).decode()
