"""What a time sent by the platform is: the Connec! API's and the Account API's alike.

An ISO 8601 date-time (Django's ``parse_datetime``) that names a real moment every
database can store: not ``2024-02-30``, no offset of 16 hours or more (real zones go
from -12:00 to +14:00; PostgreSQL refuses ±16:00 and beyond), a UTC time within years
1 to 9999 (``9999-12-31T23:59:59-23:59`` has none). A time without offset is UTC, so that
every time compares with every other and every database stores it.

:func:`platform_time` gives the aware UTC datetime, :func:`platform_local_time` the
moment with the offset it names (for a date sent as a midnight date-time, whose day is
the one it names). Both raise :class:`NotATime` for anything else, and return ``None``
for an absent value (``None``, ``""``). Callers say what a refused time means for them:
``maestrano_sync.values`` parks the Connec! record, ``maestrano_integration.account``
reads the field as unknown.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

#: Real offsets go from -12:00 to +14:00; PostgreSQL refuses 16 hours or more.
MAX_OFFSET = datetime.timedelta(hours=16)


class NotATime(ValueError):
    """A value present but not a time this module accepts (its message quotes it, cut
    short)."""

    def __init__(self, value: Any) -> None:
        super().__init__(f"not a date-time: {excerpt(value)}")
        self.value = value


def platform_local_time(value: Any) -> datetime.datetime | None:
    """``value`` as an aware datetime in the offset it names (UTC when it names none)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise NotATime(value)
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well formed, but no such time ("2024-02-30T00:00:00Z")
        parsed = None
    if parsed is None:
        raise NotATime(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=datetime.UTC)
    offset = parsed.utcoffset()
    if offset is None or abs(offset) >= MAX_OFFSET:
        raise NotATime(value)
    return parsed


def platform_time(value: Any) -> datetime.datetime | None:
    """``value`` as an aware UTC datetime (:func:`platform_local_time`, converted)."""
    parsed = platform_local_time(value)
    if parsed is None:
        return None
    try:
        return parsed.astimezone(datetime.UTC)
    except OverflowError:  # "9999-12-31T23:59:59-23:59": no such UTC time
        raise NotATime(value) from None


def excerpt(value: Any) -> str:
    """``repr(value)`` cut short, for messages and logs (repr escapes NUL and surrogates)."""
    text = repr(value)
    return text if len(text) <= 100 else text[:99] + "…"
