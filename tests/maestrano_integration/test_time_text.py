"""The app writes every time it sends to the platform by one rule
(``maestrano_integration.times.platform_time_text``), which the platform's rule
(``platform_time``) reads back to the same moment: year 1 and year 9999 included."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maestrano_integration.times import NotATime, platform_time, platform_time_text

EDGES = [
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, 10, tzinfo=dt.timezone(dt.timedelta(hours=14))),
    dt.datetime(1, 1, 1),  # naive: UTC, as platform_time reads a time without offset
]


@pytest.mark.parametrize("moment", EDGES, ids=str)
def test_a_time_written_is_read_back_to_the_same_moment(moment):
    text = platform_time_text(moment)

    assert platform_time(text) == moment.replace(tzinfo=moment.tzinfo or dt.UTC)
    assert text.endswith("Z") and text[4] == "-"  # four-digit years


def test_year_one_is_written_with_four_digits():
    assert platform_time_text(dt.datetime(1, 1, 1, tzinfo=dt.UTC)) == "0001-01-01T00:00:00Z"


def test_a_moment_with_no_utc_time_is_refused_not_written():
    with pytest.raises(NotATime):
        platform_time_text(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))))


@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_every_utc_time_round_trips(moment):
    assert platform_time(platform_time_text(moment)) == moment
