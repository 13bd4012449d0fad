"""The sandbox reads every time it is sent by the platform's one rule
(maestrano_integration/times.py), over HTTP: an odd time is a 4xx naming the reason, never
a 500, and what it stores it serves in a form the app reads back.

The Account API's filters answer 400, its bills 422 with the field's reason (its
envelope, docs/protocol.md 'Account API'); Connec!'s records 422 with the problem
(a validation error) and its ``$filter`` 400.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from maestrano_integration.account import AccountClient
from maestrano_integration.times import NotATime, platform_time
from maestrano_sandbox.models import Bill, ConnecRecord, RecurringBill
from tests.sandbox.connec_support import CONNEC, basic_auth

pytestmark = pytest.mark.django_db(databases="__all__")

TIMEOUT = 10

#: Odd times and the reason the sandbox gives for each.
ODD_TIMES = {
    "": "empty",
    " ": "not an ISO 8601 date or date-time",
    "soon": "not an ISO 8601 date or date-time",
    "2026-13-01": "no such date or time",
    "2024-02-30T00:00:00Z": "no such date or time",
    "0000-01-01": "no such date or time",
    "0000-12-31T23:59:59Z": "no such date or time",
    "2030-01-01T00:00:00+16:00": "an offset of 16 hours or more",
    "2030-01-01T00:00:00-20:00": "an offset of 16 hours or more",
    "0001-01-01T00:00:00+01:00": "no UTC time between years 1 and 9999",
    "9999-12-31T23:59:59-01:00": "no UTC time between years 1 and 9999",
    "2030-01-01T00:00:00" + "0" * 30_000: "not an ISO 8601 date or date-time",
    # ISO forms (or Python's and Django's readings) the platform never sends: only the
    # extended calendar forms are times (maestrano_integration.times.PLATFORM_TIME_FORM).
    **dict.fromkeys(
        [
            "2026-W01-1T00:00:00Z",  # a week date
            "2026-W01-1",
            "2026-001",  # an ordinal date
            "20260101T000000Z",  # the basic form
            "20260101",
            "2030-01-01T00:00:00,5Z",  # a comma before the fraction
            "2030-01-01T24:00:00Z",  # the end of a day
            "2030-01-01T00:00:00+0200",  # offsets without their colon, or minutes
            "2030-01-01T00:00:00+02",
            "2030-01-01T00:00:00+02:00:30",  # seconds in an offset
            "2030-01-01T00Z",  # an hour alone
            "2030-01-01t00:00:00Z",
            "2030-1-1T00:00:00Z",  # a one-digit month and day
            "2030-01-01T00:00:00.Z",  # a point without a fraction
            "2030-01-01T00:00:00Z\n",  # a trailing newline
            "\u0662\u0660\u0663\u0660-01-01",  # another script's digits
        ],
        "not an ISO 8601 date or date-time",
    ),
}
#: JSON values that are no time at all.
NOT_TEXT = [20300101, 1.5, True, [], {}, ["2030-01-01"], {"date": "2030-01-01"}]


@pytest.fixture
def account(platform):
    platform.add_member(group_uid="cld-1", user_uid="usr-1")
    root = f"{platform.sandbox_url}/api/v1/account"
    session = requests.Session()
    session.auth = platform.auth
    return root, session


def bill(**fields):
    return {"group_id": "cld-1", "price_cents": 100, "description": "Setup", **fields}


# --- Account API: filters ---------------------------------------------------------------


@pytest.mark.parametrize("value", ODD_TIMES, ids=lambda v: v[:30] or "empty")
@pytest.mark.parametrize(
    ("resource", "param"),
    [
        ("bills", "created_at_after"),
        ("bills", "period_started_at"),
        ("recurring_bills", "start_date_strictly_before"),
        ("recurring_bills", "start_date_in"),
        ("groups", "free_trial_end_at_not"),
    ],
)
def test_an_odd_time_in_a_filter_is_a_400_naming_the_reason(account, resource, param, value):
    root, session = account
    if param.endswith("_in"):
        value = f"2030-01-01,{value}" if value else value

    response = session.get(f"{root}/{resource}", params={param: value}, timeout=TIMEOUT)

    if param.endswith("_in") and not value:
        assert response.status_code == 200  # an empty set of values: no filter
        return
    assert response.status_code == 400, response.text[:500]
    (message,) = response.json()["errors"][param]
    assert f": {ODD_TIMES[value.removeprefix('2030-01-01,')]}. " in message
    assert "ISO 8601" in message and "16 hours" in message
    assert len(message) < 500  # the value quoted, cut short


def test_times_the_rule_accepts_filter_as_before(account):
    root, session = account
    created = session.post(
        f"{root}/bills", json=bill(period_started_at="2030-01-01T10:00:00+02:00"), timeout=TIMEOUT
    ).json()["data"]

    def ids(**params):
        response = session.get(f"{root}/bills", params=params, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["data"]]

    assert created["period_started_at"] == "2030-01-01T08:00:00Z"
    assert ids(period_started_at="2030-01-01T08:00:00") == [created["id"]]  # no offset: UTC
    assert ids(period_started_at_after="2030-01-01") == [created["id"]]  # a date: its midnight
    assert ids(period_started_at_after="2030-01-01T09:00:00+01:00") == [created["id"]]
    assert ids(period_started_at_strictly_after="2030-01-01T10:00:00+02:00") == []
    # A "+" typed in a URL is read as a space by the query string: it is given back.
    url = f"{root}/bills?period_started_at=2030-01-01T10:00:00+02:00"
    assert [b["id"] for b in session.get(url, timeout=TIMEOUT).json()["data"]] == [created["id"]]


# --- Account API: bills ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [v for v in ODD_TIMES if v.strip()] + NOT_TEXT, ids=lambda v: repr(v)[:30]
)
@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("bills", "period_started_at"),
        ("bills", "period_ended_at"),
        ("recurring_bills", "start_date"),
    ],
)
def test_an_odd_time_in_a_bill_is_a_field_error_naming_the_reason(account, resource, field, value):
    root, session = account

    response = session.post(f"{root}/{resource}", json=bill(**{field: value}), timeout=TIMEOUT)

    assert response.status_code == 422, response.text[:500]
    (message,) = response.json()["errors"][field]
    reason = ODD_TIMES.get(value) if isinstance(value, str) else "not a string"
    assert message.startswith(f"{reason.capitalize()}. Send an ISO 8601 date or date-time")
    assert not Bill.objects.exists() and not RecurringBill.objects.exists()


def test_a_time_of_year_1_is_stored_and_served_so_that_the_app_reads_it(account, platform):
    """The sandbox answers times in four-digit years (``strftime`` writes year 1 as "1",
    which the app would read as no time at all)."""
    root, session = account
    created = session.post(
        f"{root}/bills",
        json=bill(period_started_at="0001-01-01", period_ended_at="9999-12-31T23:59:59Z"),
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text

    (read,) = AccountClient().list_bills(group_id="cld-1", period_started_at="0001-01-01")

    assert created.json()["data"]["period_started_at"] == "0001-01-01T00:00:00Z"
    assert read.period_started_at == dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert read.period_ended_at == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


# --- Account API: any text ---------------------------------------------------------------

#: ISO-looking text around the edges of the rule: year 0 and 10000, month 13, day 32, hour
#: 24, offsets up to 25 hours; and any text at all (lone surrogates aside: no URL holds one).
NEAR_TIMES = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
    st.integers(0, 10_000),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.one_of(
        st.just(""),
        st.just("Z"),
        st.builds(
            "{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 25), st.integers(0, 59)
        ),
    ),
)
ANY_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)
PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def accepted(value):
    try:
        return platform_time(value, required=True)
    except NotATime:
        return None


def accepted_in_a_url(value):
    """What a filter accepts: a time by the rule, or one whose offset's "+" was typed in a
    URL (a space once the query string is read)."""
    head, space, offset = value.rpartition(" ")
    return accepted(value) or (space and "T" in head and accepted(f"{head}+{offset}"))


@PROPERTIES
@given(value=NEAR_TIMES | ANY_TEXT)
def test_any_text_as_a_filter_is_a_list_or_a_400(account, value):
    root, session = account

    response = session.get(f"{root}/bills", params={"created_at_before": value}, timeout=TIMEOUT)

    expected = 200 if accepted_in_a_url(value) else 400
    assert response.status_code == expected, (value, response.text[:300])
    assert response.json()["success"] is (expected == 200)


@PROPERTIES
@given(value=NEAR_TIMES | ANY_TEXT | st.integers() | st.floats(allow_nan=False) | st.booleans())
def test_any_json_as_a_bill_time_is_stored_as_the_rule_reads_it_or_a_422(account, value):
    root, session = account
    assume(value not in (float("inf"), float("-inf")))  # not JSON: requests sends no body

    response = session.post(f"{root}/bills", json=bill(period_started_at=value), timeout=TIMEOUT)

    if value in ("", None):
        assert response.status_code == 201
        return
    moment = accepted(value)
    if moment is None:
        assert response.status_code in (400, 422), (value, response.text[:300])  # 400: NUL
        assert not response.json()["success"]
        return
    assert response.status_code == 201, (value, response.text[:300])
    served = response.json()["data"]["period_started_at"]
    assert platform_time(served) == moment.replace(microsecond=0)


# --- Connec! ------------------------------------------------------------------------------


@pytest.fixture
def connec(platform):
    platform.add_member(group_uid="cld-1", user_uid="usr-1")
    session = requests.Session()
    session.headers["Authorization"] = basic_auth(*platform.auth)
    session.headers["Content-Type"] = "application/vnd.api+json"
    return f"{platform.url}{CONNEC}/api/v2/cld-1", session


@pytest.mark.parametrize(
    "value", [v for v in ODD_TIMES if v] + NOT_TEXT, ids=lambda v: repr(v)[:30]
)
def test_an_odd_time_in_a_connec_record_is_a_422_naming_the_reason(connec, value):
    root, session = connec
    person = {"first_name": "Ada", "last_name": "L", "birth_date": value}

    response = session.post(f"{root}/people", data=json.dumps({"people": person}), timeout=TIMEOUT)

    assert response.status_code == 422, response.text[:500]
    reason = ODD_TIMES.get(value) if isinstance(value, str) else "not a string"
    expected = "" if reason == "not an ISO 8601 date or date-time" else f" ({reason})"
    assert f'"birth_date must be an ISO 8601 date or date-time{expected}"' in response.text
    assert len(response.text) < 2000
    assert not ConnecRecord.objects.exists()


@pytest.mark.parametrize("value", [v for v in ODD_TIMES if v.strip()], ids=lambda v: v[:30])
def test_an_odd_time_in_a_connec_filter_is_a_400_naming_the_reason(connec, value):
    root, session = connec

    response = session.get(
        f"{root}/people", params={"$filter": f"updated_at gt '{value}'"}, timeout=TIMEOUT
    )

    assert response.status_code == 400, response.text[:500]
    assert f"is not a valid updated_at: {ODD_TIMES[value]}" in response.text
    assert len(response.text) < 2000


def test_a_connec_date_of_year_1_is_served_in_four_digits(connec):
    root, session = connec
    person = {"first_name": "Ada", "last_name": "L", "birth_date": "0001-01-01T00:00:00.5Z"}

    created = session.post(f"{root}/people", data=json.dumps({"people": person}), timeout=TIMEOUT)

    assert created.status_code == 201, created.text
    assert created.json()["people"]["birth_date"] == "0001-01-01T00:00:00.500000Z"
