"""Property-based tests of the parsers of platform input: SAML attributes and basic auth.

Bounded for CI (``max_examples``, no deadline): any input gives a value or the
parser's own refusal, never another exception.
"""

from __future__ import annotations

import base64
import datetime as dt

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from maestrano_integration.auth import parse_basic_authorization
from maestrano_integration.saml import SamlValidationError, SsoAttributes
from maestrano_integration.strict_input import is_safe_text

BOUNDED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ATTRIBUTE_NAMES = [
    "uid",
    "group_uid",
    "mno_session",
    "mno_session_recheck",
    "group_name",
    "group_end_free_trial",
    "group_role",
    "group_has_credit_card",
    "group_currency",
    "group_country",
    "virtual_uid",
    "email",
    "name",
    "surname",
    "app_owner",
    "organizations",
    "mno_uid",
]
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
).map(repr)
VALUES = (
    st.text(max_size=30)
    | st.sampled_from(["true", "false", "1", " yes ", "", "2030-01-01T00:00:00Z", "9999-99-99"])
    | st.datetimes().map(dt.datetime.isoformat)
    | JSON_TEXT
    | st.just("[" * 2000 + "]" * 2000)
)
ANY_VALUE = VALUES | st.none() | st.integers() | st.lists(VALUES, max_size=2)
NAMES = st.sampled_from(ATTRIBUTE_NAMES) | st.text(max_size=10)


@BOUNDED
@given(st.dictionaries(NAMES, ANY_VALUE, max_size=12), st.text(max_size=20))
@example({"group_end_free_trial": "0001-01-01T00:00:00+05:00"}, "")  # no UTC time: unknown
@example({"mno_session_recheck": "9999-12-31T23:59:59-23:59"}, "")
def test_attributes_from_any_mapping_are_typed_and_storable(flat, name_id):
    attributes = SsoAttributes.from_mapping(flat, name_id=name_id)

    for value in (attributes.uid, attributes.group_uid, attributes.email, attributes.group_name):
        assert isinstance(value, str)
        assert is_safe_text(value)
    assert attributes.group_has_credit_card in (None, True, False)
    assert attributes.app_owner in (None, True, False)
    for moment in (attributes.session_recheck, attributes.group_end_free_trial):
        # UTC, as every database stores it (a time with no UTC equivalent is unknown).
        assert moment is None or moment.utcoffset() == dt.timedelta(0)
    assert all(is_safe_text(key + value) for key, value in attributes.raw.items())


@BOUNDED
@given(st.dictionaries(NAMES, st.lists(ANY_VALUE, max_size=3), max_size=12))
@example({"uid": ["\x00"], "group_uid": ["cld-1"]})  # no database stores it: absent
@example({"uid": ["usr-1"], "group_uid": [" \ud800 "]})
@example({"uid": [".."], "group_uid": ["cld-1"]})  # names no resource in a platform URL
@example({"uid": ["usr-1"], "group_uid": [" . "]})
def test_attributes_from_any_saml_values_or_a_missing_attribute_refusal(values):
    try:
        attributes = SsoAttributes.from_saml(values)
    except SamlValidationError as refused:
        assert refused.reason in {
            "missing_attribute",
            "invalid_attribute",
            "multi_valued_attribute",
        }
        if refused.reason == "multi_valued_attribute":
            assert any(len(values.get(key) or ()) > 1 for key in SsoAttributes.SINGLE_VALUED)
        return
    assert attributes.uid not in {"", ".", ".."}
    assert attributes.group_uid not in {"", ".", ".."}


@BOUNDED
@given(st.text(max_size=300) | st.binary(max_size=200).map(lambda b: "Basic " + b.hex()))
def test_any_authorization_header_parses_or_is_malformed(header):
    credentials = parse_basic_authorization(header)

    if credentials is not None:
        username, password = credentials
        assert is_safe_text(username + password)
        assert ":" not in username


@BOUNDED
@given(
    st.text(max_size=40).filter(lambda t: ":" not in t),
    st.text(max_size=40),
    st.sampled_from(["Basic", "basic", "BASIC"]),
)
def test_basic_credentials_round_trip_unless_they_hold_text_we_refuse(username, password, scheme):
    encoded = (username + ":" + password).encode("utf-8", "surrogatepass")
    header = f"{scheme} {base64.b64encode(encoded).decode()}"

    credentials = parse_basic_authorization(header)

    if is_safe_text(username + password):
        assert credentials == (username, password)
    else:
        assert credentials is None


@BOUNDED
@given(st.binary(max_size=120))
def test_any_base64_payload_parses_or_is_malformed(payload):
    header = "Basic " + base64.b64encode(payload).decode()

    credentials = parse_basic_authorization(header)

    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        assert credentials is None
        return
    if ":" in text and is_safe_text(text):
        assert credentials == tuple(text.split(":", 1))
    else:
        assert credentials is None
