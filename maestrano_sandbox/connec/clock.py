"""Timestamps of Connec! records: strictly increasing, microsecond precision, ``Z`` on the wire.

A client polls ``$filter=updated_at gt '<last updated_at it saw>'``; two writes
sharing a timestamp, or a later write stamped earlier, would make it miss one.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from django.utils import timezone

from maestrano_integration.times import platform_time

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


def restart_clock() -> None:
    """Forget the last timestamp handed out: the next one is now again.

    For a new test's sandbox (``maestrano_sandbox.testing.platform_for_test``), whose
    records of the test before are gone: a test that stamped one in the future (a record
    stored with a later ``updated_at``, a clock moved forward) would otherwise leave every
    later test's edits stamped after it, later than the app's own changes of that test.
    """
    global _last
    with _lock:
        _last = None


def format_timestamp(value: dt.datetime) -> str:
    """``2016-10-04T00:36:23.123456Z`` (the year in four digits: ``strftime`` writes year 1
    as ``1``)."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def normalize_timestamp(text: Any) -> str:
    """Store date-times as Connec! answers them: UTC with ``Z``, e.g. ``1985-01-29T00:00:00Z``.

    ``text`` is read by the platform's one rule of times (:func:`platform_time`, required),
    so the hub stores only times its clients can read; raises its ``NotATime`` (a
    ``ValueError``) for any other value.
    """
    parsed = platform_time(text, required=True)
    if parsed.microsecond:
        return format_timestamp(parsed)
    return parsed.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
