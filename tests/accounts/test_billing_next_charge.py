"""The next charge of a subscription (``maestrano_accounts.billing.services.next_charge_date``:
the first charge a plan change keeps, shown on the plan's confirmation page) is computed,
not stepped through: for any start, period and frequency it is the date found by stepping
cycle by cycle from the start (the computation it replaced, :func:`stepped` here), and a
start far in the past costs what a recent one does (docs/billing.md, 'Plan change').

The pages' side (a start in year 1 answered by the platform) is in
``tests/accounts/test_billing_bad_times.py``.
"""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestrano_accounts.billing.models import BillingPeriod, CompanySubscription
from maestrano_accounts.billing.services import (
    LATEST_BILLING_MOMENT,
    add_periods,
    next_charge_date,
)

#: The platform's longest cycle is a year (docs/protocol.md, 'Recurring bills'); a few
#: longer ones too, and semi-months beyond the platform's 1.
FREQUENCIES = {
    BillingPeriod.DAY: st.integers(1, 400),
    BillingPeriod.WEEK: st.integers(1, 60),
    BillingPeriod.SEMI_MONTH: st.integers(1, 3),
    BillingPeriod.MONTH: st.integers(1, 14),
    BillingPeriod.YEAR: st.integers(1, 3),
}
UTC_TIMES = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=st.just(dt.UTC)
)


def stepped(*, start: dt.datetime, period: str, frequency: int, now: dt.datetime) -> dt.datetime:
    """The next charge as it was computed before: every cycle from the start until one is
    after ``now``."""
    cycles = 0
    moment = start
    while moment <= now:
        cycles += frequency
        moment = add_periods(start, period, cycles)
    return moment


def subscription(*, start: dt.datetime, period: str, frequency: int) -> CompanySubscription:
    return CompanySubscription(start_date=start, period=period, frequency=frequency)


@st.composite
def schedules(draw):
    """A start within three years before ``now`` (or two months after), on any day of the
    month (29 to 31 are clamped), any time; a period and a frequency."""
    now = draw(UTC_TIMES)
    before = draw(st.integers(-60 * 86_400, 3 * 366 * 86_400))
    start = now - dt.timedelta(seconds=before, microseconds=draw(st.integers(0, 999_999)))
    if draw(st.booleans()):  # the days months do not all have
        last_day = calendar.monthrange(start.year, start.month)[1]
        start = start.replace(day=min(draw(st.integers(28, 31)), last_day))
    period = draw(st.sampled_from(list(FREQUENCIES)))
    return start, period, draw(FREQUENCIES[period]), now


@settings(max_examples=600, deadline=None)
@given(schedules())
def test_the_next_charge_is_the_one_stepping_through_the_cycles_finds(schedule):
    start, period, frequency, now = schedule

    found = next_charge_date(
        subscription=subscription(start=start, period=period, frequency=frequency), now=now
    )

    assert found == stepped(start=start, period=period, frequency=frequency, now=now)
    assert found > now


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_a_charge_on_the_dot_is_past_and_the_next_cycle_comes(schedule):
    """``now`` exactly on a charge: that charge is done, the next one is the answer."""
    start, period, frequency, _ = schedule
    now = add_periods(start, period, 3 * frequency)

    found = next_charge_date(
        subscription=subscription(start=start, period=period, frequency=frequency), now=now
    )

    assert found == add_periods(start, period, 4 * frequency)


@pytest.mark.parametrize("period", list(FREQUENCIES))
@pytest.mark.parametrize(
    "start",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1, 1, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC),
    ],
)
def test_a_start_in_year_1_gives_the_same_next_charge(period, start):
    now = dt.datetime(2026, 12, 4, 1, 2, 3, tzinfo=dt.UTC)

    found = next_charge_date(
        subscription=subscription(start=start, period=period, frequency=1), now=now
    )

    assert found == stepped(start=start, period=period, frequency=1, now=now)
    assert now < found <= now + dt.timedelta(days=366)


def test_a_frequency_of_0_counts_as_1_instead_of_never_ending():
    """The plan admin accepts a frequency of 0 (the platform refuses it): stepping by 0
    cycles never passed ``now``."""
    start = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)

    found = next_charge_date(
        subscription=subscription(start=start, period=BillingPeriod.MONTH, frequency=0), now=now
    )

    assert found == dt.datetime(2026, 12, 15, tzinfo=dt.UTC)


#: The largest frequency PostgreSQL's ``smallint`` column holds; SQLite stores any.
LARGEST_STORED_FREQUENCY = 32_767


START_TIMES = [dt.datetime(2026, 1, 31, tzinfo=dt.UTC), dt.datetime(1, 1, 1, tzinfo=dt.UTC)]
NOW = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("period", "frequency"),
    [(period, frequency) for period in FREQUENCIES for frequency in (10**9, 2**63)]
    + [(BillingPeriod.YEAR, LARGEST_STORED_FREQUENCY)],
)
@pytest.mark.parametrize("start", START_TIMES)
def test_a_next_cycle_past_year_9999_is_the_latest_moment_not_an_overflow(period, frequency, start):
    """A cycle of a billion days (or 32,767 years) ends after any date Python holds: the
    next charge is the latest moment billing computes, as a trial's end is
    (docs/billing.md, 'Plan change')."""
    found = next_charge_date(
        subscription=subscription(start=start, period=period, frequency=frequency), now=NOW
    )

    assert found == LATEST_BILLING_MOMENT == dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("period", [p for p in FREQUENCIES if p != BillingPeriod.YEAR])
@pytest.mark.parametrize("start", START_TIMES)
def test_the_largest_stored_frequency_within_range_is_computed_as_any(period, start):
    schedule = {"start": start, "period": period, "frequency": LARGEST_STORED_FREQUENCY}

    found = next_charge_date(subscription=subscription(**schedule), now=NOW)

    assert found == stepped(**schedule, now=NOW) < LATEST_BILLING_MOMENT


def test_a_start_after_the_latest_moment_counts_as_it():
    start = dt.datetime(9999, 12, 31, 12, tzinfo=dt.UTC)
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)

    found = next_charge_date(
        subscription=subscription(start=start, period=BillingPeriod.MONTH, frequency=1), now=now
    )

    assert found == LATEST_BILLING_MOMENT
