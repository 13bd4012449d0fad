"""The strict JSON loader and text rule every platform-facing endpoint uses."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestrano_integration import strict_input
from maestrano_integration.strict_input import InputRefused

BOUNDED = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: What a database can store: finite numbers, text without NUL or lone surrogates.
SAFE_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
SAFE_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | SAFE_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(SAFE_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"[Infinity]", "Infinity is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b"[1e999]", "the number 1e999 is out of range"),
        (b"[-1e999]", "the number -1e999 is out of range"),
        (b'{"a": {"b": "x\\u0000"}}', "$.a.b contains a NUL character"),
        (b'{"a": ["\\ud800"]}', "$.a[0] contains a lone surrogate (\\ud800)"),
        (b'{"a": ["\\udfff"]}', "$.a[0] contains a lone surrogate (\\udfff)"),
        (b'{"a": [{"\\u0000": 1}]}', "a key of $.a[0] contains a NUL character"),
        (b"[" * 65 + b"]" * 65, "nested deeper than 64 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        (b"\xff{}", "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b"{not json", "not valid JSON (Expecting property name"),
        (b"", "not valid JSON"),
    ],
)
def test_what_no_database_stores_is_refused_with_a_reason(body, message):
    with pytest.raises(InputRefused) as refused:
        strict_input.loads(body)

    assert message in str(refused.value)


def test_the_text_rule_applies_to_str_input_as_well():
    with pytest.raises(InputRefused, match="lone surrogate"):
        strict_input.loads('{"a": "\ud800"}')


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\\u00e9t\\u00e9 \\ud83d\\ude00", "n": -0.5e-3, "big": 123456789012345678901}',
        b"[" * 64 + b"]" * 64,
        b"null",
        b'"\\u0001 control characters are fine"',
    ],
)
def test_standard_json_we_can_store_is_accepted(body):
    assert strict_input.loads(body) == json.loads(body)


@BOUNDED
@given(SAFE_JSON)
def test_any_storable_json_value_round_trips(value):
    text = json.dumps(value)

    assert strict_input.loads(text.encode()) == value
    assert strict_input.loads(text) == value


@BOUNDED
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))
def test_any_bytes_give_a_value_or_a_refusal_never_another_error(data):
    try:
        value = strict_input.loads(data)
    except InputRefused as refused:
        assert str(refused)
    else:
        assert strict_input.loads(json.dumps(value)) == value


@BOUNDED
@given(st.text(max_size=50))
def test_text_problem_names_exactly_nul_and_lone_surrogates(text):
    unsafe = "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)

    assert (strict_input.text_problem(text) is not None) == unsafe
    assert strict_input.is_safe_text(strict_input.escape_unsafe(text))
