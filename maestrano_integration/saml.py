"""SAML 2.0 for one preset: python3-saml settings, AuthnRequests, and strict Response validation.

python3-saml does the XML signature and most of the SAML rules. The platform's
old SDKs checked none of audience, destination, ``InResponseTo`` or replay, and
the library is lenient on some of them (``Destination`` is checked as a prefix,
``Recipient`` as a substring, a missing ``AudienceRestriction`` passes, an assertion
that names no request inside a Response that names one passes), so
:func:`validate_response` adds the bindings on top: ``Destination`` and every
``Recipient`` equal the ACS URL, every ``SubjectConfirmationData`` names the request
the Response answers (or none when it answers none), an audience names our api id, the
assertion and every bearer confirmation expire, exactly one assertion, one value for each
identifying attribute, our own clock skew; SHA-1 only where the preset allows it
(``sso.allow_sha1``). What needs state (replay
cache, the request ids of the browser session) lives in :mod:`maestrano_accounts`.

Everything (entity ids, URLs, certificate) comes from a :class:`Preset`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest
from lxml import etree
from onelogin.saml2 import xml_utils as xml_utils_module
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Constants
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from . import strict_input
from .conf import Preset, maestrano_settings
from .http import NOT_ONE_SEGMENT, path_segment_problem
from .strict_input import is_safe_text
from .times import platform_time_or_none

logger = logging.getLogger(__name__)

#: A real Maestrano response is a few kilobytes; anything above this is refused unparsed.
MAX_SAML_RESPONSE_BYTES = 256 * 1024

NAMESPACES = {"samlp": Constants.NS_SAMLP, "saml": Constants.NS_SAML}


class SamlValidationError(Exception):
    """A SAML response we refuse.

    ``reason`` is a short stable code for logs and tests (``wrong_destination``,
    ``replayed_assertion``...), ``detail`` says what was wrong (safe to log: it
    never contains the response), ``status`` is the HTTP status to answer.
    """

    def __init__(self, reason: str, detail: str = "", *, status: int = 400) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status


class SamlConfigurationError(Exception):
    """The preset cannot do SSO (no certificate, invalid URLs): an operator must fix settings."""


# --- python3-saml's XML helpers, their compiled forms kept ------------------------------

#: python3-saml's own ``OneLogin_Saml2_XML.query`` and ``validate_xml``, as shipped: the
#: replacements below hand anything they do not keep to them, and
#: ``benchmarks/sso_consume.py`` measures a bare validation with them.
SHIPPED_XML_HELPERS: dict[str, Any] = {
    "query": OneLogin_Saml2_XML.query,
    "validate_xml": OneLogin_Saml2_XML.validate_xml,
}

#: Compiled XPath expressions and XML schemas of this thread. lxml compiles the string
#: given to ``element.xpath()`` on every call: about two thirds of the cost of one of the
#: forty-odd queries of a Response's validation; and python3-saml, in strict mode, parses
#: and compiles its protocol schema (which imports the assertion, xmldsig and xenc ones)
#: for every Response: about 2 ms, more than the signature check (docs/performance.md).
#: An ``etree.XPath`` evaluates under a lock of its own and a schema keeps its error log
#: on itself: one set per thread keeps threads from waiting on, or reading, each other's.
_kept = threading.local()
#: The expressions are python3-saml's and this module's constants (an id is an XPath
#: variable, not part of the text), so the set stays small; emptied past this size.
_MAX_KEPT_XPATHS = 256
_SCHEMA_DIRECTORY = os.path.join(os.path.dirname(xml_utils_module.__file__), "schemas")
_OWN_SCHEMAS = frozenset(name for name in os.listdir(_SCHEMA_DIRECTORY) if name.endswith(".xsd"))


def _xpath(node: Any, expression: str, **variables: str) -> list[Any]:
    """``node.xpath(expression, namespaces=python3-saml's, **variables)``, compiled once."""
    kept: dict[str, etree.XPath] = _kept.__dict__.setdefault("expressions", {})
    compiled = kept.get(expression)
    if compiled is None:
        if len(kept) >= _MAX_KEPT_XPATHS:
            kept.clear()
        compiled = kept[expression] = etree.XPath(expression, namespaces=Constants.NSMAP)
    return compiled(node, **variables)


def _query(dom: Any, query: str, context: Any = None, tagid: str | None = None) -> list[Any]:
    """``OneLogin_Saml2_XML.query`` (every query of python3-saml's), through :func:`_xpath`:
    the same expression, namespaces and ``tagid`` on the same node."""
    source = dom if context is None else context
    return _xpath(source, query) if tagid is None else _xpath(source, query, tagid=tagid)


def _validate_xml(xml: Any, schema: str, debug: bool = False) -> Any:
    """``OneLogin_Saml2_XML.validate_xml``, python3-saml's own schema files parsed and
    compiled once per thread instead of on every call. The same answers: the document,
    ``"unloaded_xml"`` or ``"invalid_xml"``; with ``debug`` (its printed errors), or a
    schema of any other name, python3-saml's own function runs."""
    if debug or schema not in _OWN_SCHEMAS:
        return SHIPPED_XML_HELPERS["validate_xml"](xml, schema, debug)
    try:
        document = OneLogin_Saml2_XML.to_etree(xml)
    except Exception:  # what python3-saml catches there: anything that is not XML
        return "unloaded_xml"
    schemas: dict[str, etree.XMLSchema] = _kept.__dict__.setdefault("schemas", {})
    validator = schemas.get(schema)
    if validator is None:
        path = os.path.join(_SCHEMA_DIRECTORY, schema)
        validator = schemas[schema] = etree.XMLSchema(etree.parse(path))
    return document if validator.validate(document) else "invalid_xml"


OneLogin_Saml2_XML.query = staticmethod(_query)
OneLogin_Saml2_XML.validate_xml = staticmethod(_validate_xml)


# --- settings ----------------------------------------------------------------


def build_saml_settings(preset: Preset) -> dict[str, Any]:
    """The python3-saml settings dict of ``preset`` (docs/protocol.md, 'Consume'),
    and nothing else.

    Both ``wantAssertionsSigned`` and ``wantMessagesSigned`` are off because the
    platform signs the Response *or* the Assertion; python3-saml still refuses a
    response in which neither is signed. ``rejectDeprecatedAlgorithm`` (rsa-sha1, dsa-sha1
    signatures, sha1 digests) is on unless the preset allows SHA-1 (``sso.allow_sha1``,
    for the historical platform, which signs with rsa-sha1).
    """
    return {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": preset.api_id,
            "assertionConsumerService": {
                "url": preset.acs_url,
                "binding": Constants.BINDING_HTTP_POST,
            },
            "NameIDFormat": preset.name_id_format,
            "x509cert": "",
            "privateKey": "",
        },
        "idp": {
            "entityId": preset.idp,
            "singleSignOnService": {
                "url": preset.idp_sso_url,
                "binding": Constants.BINDING_HTTP_REDIRECT,
            },
            "x509cert": preset.x509_certificate,
        },
        "security": {
            "authnRequestsSigned": False,
            "wantAssertionsSigned": False,
            "wantMessagesSigned": False,
            "wantAssertionsEncrypted": False,
            "wantNameId": False,
            "wantNameIdEncrypted": False,
            "wantAttributeStatement": True,
            "requestedAuthnContext": False,
            "rejectDeprecatedAlgorithm": not preset.allow_sha1,
            "allowRepeatAttributeName": False,
            # Hosts such as http://testserver or an intranet name are legitimate.
            "allowSingleLabelDomains": True,
            "signatureAlgorithm": Constants.RSA_SHA256,
            "digestAlgorithm": Constants.SHA256,
        },
    }


#: python3-saml settings objects by the JSON of their settings dict (they are only read).
_SETTINGS_CACHE: dict[str, OneLogin_Saml2_Settings] = {}
_SETTINGS_CACHE_SIZE = 32


def saml_settings(preset: Preset) -> OneLogin_Saml2_Settings:
    """python3-saml's settings object for ``preset`` (raises :class:`SamlConfigurationError`).

    Building one checks the URLs and parses the certificate (a millisecond or
    more): it is kept per distinct settings dict, so a login pays for it once
    per process and a changed preset gets a new one.
    """
    if not preset.x509_certificate:
        raise SamlConfigurationError(f"Preset {preset.name!r} has no IdP certificate")
    values = build_saml_settings(preset)
    key = json.dumps(values, sort_keys=True)
    cached = _SETTINGS_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        built = OneLogin_Saml2_Settings(values, sp_validation_only=False)
    except Exception as error:  # python3-saml raises a bare OneLogin_Saml2_Error
        raise SamlConfigurationError(f"Preset {preset.name!r}: {error}") from error
    if len(_SETTINGS_CACHE) >= _SETTINGS_CACHE_SIZE:
        _SETTINGS_CACHE.clear()
    _SETTINGS_CACHE[key] = built
    return built


def request_data(request: HttpRequest) -> dict[str, Any]:
    """The request description python3-saml wants, from a Django request.

    ``https`` comes from ``request.is_secure()``, which honours
    ``SECURE_PROXY_SSL_HEADER`` behind a TLS-terminating proxy; ``http_host``
    is Django's validated host (with its port).
    """
    return {
        "https": "on" if request.is_secure() else "off",
        "http_host": request.get_host(),
        "script_name": request.path,
        # Django's QueryDicts are immutable: no copy (of the whole SAMLResponse) needed.
        "get_data": request.GET,
        "post_data": request.POST if request.method == "POST" else {},
    }


# --- AuthnRequest ------------------------------------------------------------


@dataclass(frozen=True)
class AuthnRedirect:
    """Where to send the browser, and the request id the response must answer."""

    url: str
    request_id: str


def build_authn_request(preset: Preset, *, forward_params: Mapping[str, str]) -> AuthnRedirect:
    """An unsigned AuthnRequest for the HTTP-Redirect binding, GET params forwarded.

    The platform reads ``group_id`` (and any other init parameter) from the
    query string of the IdP URL, as the old SDKs sent it.
    """
    settings = saml_settings(preset)
    authn_request = OneLogin_Saml2_Authn_Request(settings, force_authn=False, is_passive=False)
    parameters = {"SAMLRequest": authn_request.get_request()}
    extra = {key: value for key, value in forward_params.items() if key not in _RESERVED_PARAMS}
    url = OneLogin_Saml2_Utils.redirect(preset.idp_sso_url, {**extra, **parameters})
    return AuthnRedirect(url=url, request_id=authn_request.get_id())


_RESERVED_PARAMS = frozenset({"SAMLRequest", "SAMLResponse", "RelayState", "Signature", "SigAlg"})


# --- attributes --------------------------------------------------------------


def _parse_bool(value: Any) -> bool | None:
    if not isinstance(value, str) or not value:
        return None
    return value.strip().lower() in {"true", "1", "yes"}


@dataclass(frozen=True)
class SsoAttributes:
    """The assertion's attributes (docs/protocol.md,
    'Assertion attributes'), typed; only ``uid`` and ``group_uid`` required.

    Absent or unparsable optional attributes become ``""``/``None``: the old SDK
    crashed on a missing attribute, we do not.
    """

    uid: str
    group_uid: str
    session: str = ""
    session_recheck: dt.datetime | None = None
    group_name: str = ""
    group_end_free_trial: dt.datetime | None = None
    group_role: str = ""
    group_has_credit_card: bool | None = None
    group_email: str = ""
    group_currency: str = ""
    group_timezone: str = ""
    group_country: str = ""
    group_city: str = ""
    group_org_uid: str = ""
    virtual_uid: str = ""
    email: str = ""
    virtual_email: str = ""
    first_name: str = ""
    last_name: str = ""
    country: str = ""
    company_name: str = ""
    app_owner: bool | None = None
    organizations: Any = None
    name_id: str = ""
    raw: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    REQUIRED = ("uid", "group_uid")
    #: The attributes that say who logs in, into which group, and which local account an
    #: email may link (``virtual_*`` in virtual mode): one value each, or the login is
    #: refused (``multi_valued_attribute``). Which of two values is the user's, the
    #: platform did not say; taking the first would let the order of the values decide.
    SINGLE_VALUED = ("uid", "group_uid", "virtual_uid", "email", "virtual_email")

    @classmethod
    def from_saml(cls, attributes: Mapping[str, list[Any]], *, name_id: str = "") -> SsoAttributes:
        """Build from python3-saml's ``{name: [values]}``; raises if a required one is
        missing, or one of :attr:`SINGLE_VALUED` carries several values."""
        several = [key for key in cls.SINGLE_VALUED if len(attributes.get(key) or ()) > 1]
        if several:
            raise SamlValidationError("multi_valued_attribute", ", ".join(several))
        flat: dict[str, str] = {}
        for key, values in attributes.items():
            strings = [value for value in values if isinstance(value, str)]
            flat[key] = strings[0].strip() if strings else ""
        # Text no database stores (NUL, lone surrogates) counts as absent, as in from_mapping.
        missing = [key for key in cls.REQUIRED if not flat.get(key) or not is_safe_text(flat[key])]
        if missing:
            raise SamlValidationError("missing_attribute", ", ".join(missing))
        # Both name a resource in the platform's URLs (the group's Connec! data, the user's
        # session check): "." or ".." can name none (http.path_segment would refuse them later).
        unusable = [key for key in cls.REQUIRED if path_segment_problem(flat[key]) is not None]
        if unusable:
            raise SamlValidationError(
                "invalid_attribute", f"{', '.join(unusable)}: {NOT_ONE_SEGMENT}"
            )
        return cls.from_mapping(flat, name_id=name_id)

    @classmethod
    def from_mapping(cls, flat: Mapping[str, str], *, name_id: str = "") -> SsoAttributes:
        """Build from ``{name: value}`` (also how a login ticket stores them)."""

        def text(key: str) -> str:
            # Text no database stores (NUL, lone surrogates) counts as absent.
            value = flat.get(key)
            return value.strip() if isinstance(value, str) and is_safe_text(value) else ""

        organizations: Any = None
        if text("organizations"):
            try:
                organizations = strict_input.loads(text("organizations"))
            except strict_input.InputRefused:
                organizations = None
        return cls(
            uid=text("uid"),
            group_uid=text("group_uid"),
            session=text("mno_session"),
            session_recheck=platform_time_or_none(text("mno_session_recheck")),
            group_name=text("group_name"),
            group_end_free_trial=platform_time_or_none(text("group_end_free_trial")),
            group_role=text("group_role"),
            group_has_credit_card=_parse_bool(flat.get("group_has_credit_card")),
            group_email=text("group_email"),
            group_currency=text("group_currency").upper(),
            group_timezone=text("group_timezone"),
            group_country=text("group_country").upper(),
            group_city=text("group_city"),
            group_org_uid=text("group_org_uid"),
            virtual_uid=text("virtual_uid"),
            email=text("email"),
            virtual_email=text("virtual_email"),
            first_name=text("name"),
            last_name=text("surname"),
            country=text("country").upper(),
            company_name=text("company_name"),
            app_owner=_parse_bool(flat.get("app_owner")),
            organizations=organizations,
            name_id=name_id or text("mno_uid"),
            raw={
                key: value
                for key, value in flat.items()
                if isinstance(key, str) and isinstance(value, str) and is_safe_text(key + value)
            },
        )

    def user_uid(self, creation_mode: str) -> str:
        """The local user's uid: ``virtual_uid`` in virtual mode (``usr-1.cld-1``), else ``uid``."""
        if creation_mode == "virtual":
            return self.virtual_uid or f"{self.uid}.{self.group_uid}"
        return self.uid

    def user_email(self, creation_mode: str) -> str:
        if creation_mode == "virtual":
            return self.virtual_email
        return self.email


# --- Response validation -------------------------------------------------------


@dataclass(frozen=True)
class ValidatedAssertion:
    """What a valid Response says: who, for which request, until when it may be replayed, and
    when the IdP issued it."""

    assertion_id: str
    in_response_to: str
    expires_at: dt.datetime
    attributes: SsoAttributes
    #: The earlier of the Response's and the Assertion's ``IssueInstant``, by the IdP's clock
    #: and to the second (a fraction is ignored): when the platform vouched for this login.
    #: ``None`` only for an assertion built by hand (the schema requires both times).
    issued_at: dt.datetime | None = None


def decode_saml_response(value: str | None) -> bytes:
    """Strict base64 decoding of the ``SAMLResponse`` form field."""
    if not value or not value.strip():
        raise SamlValidationError("missing_response", "no SAMLResponse in the request")
    compact = "".join(value.split())
    if len(compact) > MAX_SAML_RESPONSE_BYTES * 4 // 3 + 4:
        raise SamlValidationError("response_too_large", f"{len(compact)} bytes")
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SamlValidationError("not_base64", "SAMLResponse is not base64") from None
    if not decoded.strip():
        raise SamlValidationError("missing_response", "SAMLResponse is empty")
    return decoded


def _saml_time(value: str | None, *, what: str) -> dt.datetime | None:
    """An ``xs:dateTime`` in UTC as python3-saml reads it (``parse_SAML_to_time``: the
    seconds kept, a fraction ignored, ``Z`` or nothing after), stricter on padding.

    Its pattern with ``datetime.fromisoformat``: python3-saml's ``strptime`` attempts cost
    about 20 µs per time, three times per Response.
    """
    if value is None:
        return None
    matched = OneLogin_Saml2_Utils.TIME_FORMAT_WITH_FRAGMENT.match(value)
    try:
        if matched is None:
            raise ValueError(value)
        return dt.datetime.fromisoformat(matched.group(1)).replace(tzinfo=dt.UTC)
    except ValueError:
        raise SamlValidationError("malformed_time", f"{what} {value!r}") from None


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def validate_response(
    preset: Preset, *, saml_response: str | None, request: HttpRequest
) -> ValidatedAssertion:
    """Validate a base64 ``SAMLResponse`` posted to ``preset``'s ACS.

    Raises :class:`SamlValidationError` on any problem. Does not check replay
    or ``InResponseTo`` against the browser session (that state is the caller's).
    """
    decoded = decode_saml_response(saml_response)
    head = decoded[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in decoded.lower():
        raise SamlValidationError("doctype_forbidden", "DOCTYPE or ENTITY declarations are refused")
    settings = saml_settings(preset)
    try:
        response = OneLogin_Saml2_Response(settings, base64.b64encode(decoded).decode("ascii"))
    except Exception as error:  # lxml/defusedxml errors: not well-formed, DTD, entities
        raise SamlValidationError("malformed_xml", type(error).__name__) from None

    document = response.document
    if document.tag != f"{{{Constants.NS_SAMLP}}}Response":
        raise SamlValidationError("malformed_xml", "the root element is not samlp:Response")
    if _xpath(document, "//saml:EncryptedAssertion"):
        raise SamlValidationError("encrypted_assertion", "encrypted assertions are not supported")
    assertions = _xpath(document, "//saml:Assertion")
    if len(assertions) != 1:
        # A second (unsigned) assertion next to a signed one is signature wrapping.
        raise SamlValidationError("wrong_assertion_count", f"{len(assertions)} assertions")

    try:
        response.is_valid(request_data(request), raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as error:
        reason = "sha1_refused" if error.code in _DEPRECATED_ALGORITHM_CODES else "invalid_response"
        raise SamlValidationError(reason, str(error)) from None
    except Exception as error:
        raise SamlValidationError("invalid_response", str(error)) from None

    # python3-saml checked the signature; what follows reads the (single, signed) assertion.
    assertion = assertions[0]
    _check_bindings(preset, document=document, assertion=assertion)
    expires_at, issued_at = _check_times(assertion, document=document)

    try:
        attributes = SsoAttributes.from_saml(response.get_attributes())
    except SamlValidationError:
        raise
    except Exception as error:  # duplicated attribute names
        raise SamlValidationError("invalid_attributes", str(error)) from None

    assertion_id = assertion.get("ID") or ""
    if not assertion_id:
        raise SamlValidationError("missing_assertion_id")
    in_response_to = document.get("InResponseTo") or ""
    return ValidatedAssertion(
        assertion_id=assertion_id,
        in_response_to=in_response_to,
        expires_at=expires_at,
        attributes=attributes,
        issued_at=issued_at,
    )


#: python3-saml's codes for a signature or digest algorithm ``rejectDeprecatedAlgorithm``
#: refuses (SHA-1, in a preset without ``sso.allow_sha1``).
_DEPRECATED_ALGORITHM_CODES = frozenset(
    {
        OneLogin_Saml2_ValidationError.DEPRECATED_SIGNATURE_METHOD,
        OneLogin_Saml2_ValidationError.DEPRECATED_DIGEST_METHOD,
    }
)


def _same_url(left: str, right: str) -> bool:
    """Exact URL equality, tolerant only of the case of scheme and host (RFC 3986)."""
    a, b = urlsplit(left), urlsplit(right)
    return (
        a.scheme.lower() == b.scheme.lower()
        and a.netloc.lower() == b.netloc.lower()
        and a.path == b.path
        and a.query == b.query
        and a.fragment == b.fragment
    )


def _check_bindings(preset: Preset, *, document: Any, assertion: Any) -> None:
    acs_url = preset.acs_url
    destination = document.get("Destination")
    if not destination:
        raise SamlValidationError("missing_destination", "the Response has no Destination")
    if not _same_url(destination, acs_url):
        raise SamlValidationError("wrong_destination", f"Destination is {destination!r}")

    confirmations = _xpath(
        assertion, "./saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
    )
    if not confirmations:
        raise SamlValidationError("missing_recipient", "no SubjectConfirmationData")
    # The request a Response answers is named in the assertion too (SAML profiles 4.1.4.2),
    # both or neither: when only the assertion is signed, the Response's own InResponseTo
    # is anyone's to write, and an unsolicited assertion would pass for an answer.
    in_response_to = document.get("InResponseTo") or ""
    for data in confirmations:
        recipient = data.get("Recipient")
        if not recipient or not _same_url(recipient, acs_url):
            raise SamlValidationError("wrong_recipient", f"Recipient is {recipient!r}")
        if (data.get("InResponseTo") or "") != in_response_to:
            raise SamlValidationError("wrong_in_response_to", "SubjectConfirmationData mismatch")

    audiences = [
        (node.text or "").strip()
        for node in _xpath(assertion, "./saml:Conditions/saml:AudienceRestriction/saml:Audience")
    ]
    if preset.api_id not in audiences:
        raise SamlValidationError("wrong_audience", f"audiences {audiences!r}")


def _check_times(assertion: Any, *, document: Any) -> tuple[dt.datetime, dt.datetime | None]:
    """Issue, conditions and confirmation times with our clock skew; returns the replay
    expiry and the earlier issue time (:attr:`ValidatedAssertion.issued_at`). A Response or
    assertion issued later than now (beyond the skew) is refused: an IdP does not sign what
    it has not issued yet (the schema requires both times). A bearer
    ``SubjectConfirmationData`` must carry its own ``NotOnOrAfter``."""
    skew = dt.timedelta(seconds=float(maestrano_settings.SSO_CLOCK_SKEW_SECONDS))
    now = _now()
    issue_times = []
    for element, what in ((document, "Response"), (assertion, "Assertion")):
        issued = _saml_time(element.get("IssueInstant"), what=f"{what} IssueInstant")
        if issued is not None and issued > now + skew:
            raise SamlValidationError(
                "issued_in_future", f"{what} IssueInstant {issued.isoformat()}"
            )
        if issued is not None:
            issue_times.append(issued)
    conditions = _xpath(assertion, "./saml:Conditions")
    if len(conditions) != 1:
        raise SamlValidationError("missing_conditions")
    not_before = _saml_time(conditions[0].get("NotBefore"), what="NotBefore")
    not_on_or_after = _saml_time(conditions[0].get("NotOnOrAfter"), what="NotOnOrAfter")
    if not_on_or_after is None:
        raise SamlValidationError("missing_expiry", "the assertion has no NotOnOrAfter")
    if not_before is not None and not_before > now + skew:
        raise SamlValidationError("not_yet_valid", f"NotBefore {not_before.isoformat()}")
    if not_on_or_after <= now - skew:
        raise SamlValidationError("expired", f"NotOnOrAfter {not_on_or_after.isoformat()}")
    expiries = [not_on_or_after]
    for data in _xpath(
        assertion, "./saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
    ):
        confirmation_expiry = _saml_time(data.get("NotOnOrAfter"), what="NotOnOrAfter")
        if confirmation_expiry is None and data.getparent().get("Method") == Constants.CM_BEARER:
            # The Web Browser SSO profile (SAML profiles 4.1.4.2) requires it of a bearer
            # confirmation: without it, whoever holds the assertion may present it until
            # the Conditions end, which the IdP need not bound as tightly.
            raise SamlValidationError(
                "missing_confirmation_expiry",
                "a bearer SubjectConfirmationData has no NotOnOrAfter",
            )
        if confirmation_expiry is not None:
            if confirmation_expiry <= now - skew:
                raise SamlValidationError(
                    "expired", f"SubjectConfirmationData {confirmation_expiry.isoformat()}"
                )
            expiries.append(confirmation_expiry)
    return max(expiries) + skew, min(issue_times, default=None)
