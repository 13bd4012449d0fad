"""Timestamps of Connec! records: strictly increasing, microsecond precision, ``Z`` on the wire.

A client polls ``$filter=updated_at gt '<last updated_at it saw>'``; two writes
sharing a timestamp, or a later write stamped earlier, would make it miss one.
"""

from __future__ import annotations

import datetime as dt
import threading

from django.utils import timezone

ONE_MICROSECOND = dt.timedelta(microseconds=1)
_lock = threading.Lock()
_last: dt.datetime | None = None


def next_timestamp(*, after: dt.datetime | None = None) -> dt.datetime:
    """Now, or just past the last timestamp handed out (and past ``after``) if the clock lags.

    Monotonic within this process, which is how the demo and the tests run the
    sandbox; a multi-process deployment relies on the id tie-break of orderings.
    """
    global _last
    with _lock:
        stamp = timezone.now()
        for floor in (_last, after):
            if floor is not None and stamp <= floor:
                stamp = floor + ONE_MICROSECOND
        _last = stamp
        return stamp


def format_timestamp(value: dt.datetime) -> str:
    """``2016-10-04T00:36:23.123456Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time, naive meaning UTC. Raises ``ValueError``."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first representable time
        raise ValueError(f"{text!r} is out of range") from None


def normalize_timestamp(text: str) -> str:
    """Store date-times as Connec! answers them: UTC with ``Z``, e.g. ``1985-01-29T00:00:00Z``."""
    parsed = parse_timestamp(text)
    if parsed.microsecond:
        return format_timestamp(parsed)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
