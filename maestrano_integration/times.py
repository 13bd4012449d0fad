"""What a time sent by the platform is: the Connec! API's and the Account API's alike.

An ISO 8601 date or date-time in the extended calendar form the platform sends
(:data:`PLATFORM_TIME_FORM`: ``2026-01-01``, ``2026-01-01T10:00[:00[.5]]`` with ``Z``,
``±HH:MM`` or no offset; read by Django's ``parse_datetime``) that names a real moment every
database can store: not ``2024-02-30``, no offset of 16 hours or more (real zones go
from -12:00 to +14:00; PostgreSQL refuses ±16:00 and beyond), a UTC time within years
1 to 9999 (``9999-12-31T23:59:59-23:59`` has none). A time without offset is UTC, so that
every time compares with every other and every database stores it.

:func:`platform_time` gives the aware UTC datetime, :func:`platform_local_time` the
moment with the offset it names (for a date sent as a midnight date-time, whose day is
the one it names). Both raise :class:`NotATime` for anything else (its ``reason`` says
why, for people), and return ``None`` for an absent value (``None``, ``""``), which
``platform_time(..., required=True)`` refuses too. Callers say what a refused time means
for them: ``maestrano_sync.values`` parks the Connec! record, ``maestrano_integration.account``
reads the field as unknown; the sandbox, which plays the platform, answers a 400 or 422
naming the reason (its Account API's filters and bills, its Connec! records and
``$filter``), so that it never stores nor serves a time this rule refuses.

:func:`platform_time_text` writes a time the app sends to the platform, in the form
:func:`platform_time` reads back (not ``strftime("%Y")``, which writes year 1 as ``1``).
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Literal, overload

from django.utils.dateparse import parse_date, parse_datetime

#: Real offsets go from -12:00 to +14:00; PostgreSQL refuses 16 hours or more.
MAX_OFFSET = datetime.timedelta(hours=16)


#: The forms of a time the platform sends, ISO 8601's extended calendar forms (RFC 3339's):
#: a date ``YYYY-MM-DD``, or a date-time ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` (a space for
#: the ``T`` too), with ``Z``, ``±HH:MM`` or no offset; ASCII digits, a fraction of at most 9.
#: Python's ``fromisoformat`` behind Django's ``parse_datetime`` reads other ISO forms the
#: platform never sends (week dates ``2026-W01-1``, the basic form ``20260101T000000Z``, a
#: comma before the fraction, an hour alone, a lowercase ``t``, ``±HHMM``, ``±HH`` and
#: seconds in offsets), Django's fallback pattern a one-digit month, a space before the
#: offset, a trailing newline; ``24:00`` (the end of a day) and ordinal dates ``2026-001``
#: are ISO forms too, which a newer Python may read: each is refused (:data:`NOT_ISO`)
#: before it is parsed. The values of a well-formed time are checked by the parse
#: (``2024-02-30``: :data:`NO_SUCH_TIME`).
PLATFORM_TIME_FORM = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)

#: Why a value is refused (:attr:`NotATime.reason`).
NOT_TEXT = "not a string"
ABSENT = "empty"
NOT_ISO = "not an ISO 8601 date or date-time"
NO_SUCH_TIME = "no such date or time"
FAR_OFFSET = "an offset of 16 hours or more"
OUT_OF_RANGE = "no UTC time between years 1 and 9999"


class NotATime(ValueError):
    """A value that is not a time this module accepts: the message quotes it (cut short),
    ``reason`` says why (one of the constants above)."""

    def __init__(self, value: Any, reason: str = NOT_ISO) -> None:
        super().__init__(f"not a date-time: {excerpt(value)}")
        self.value = value
        self.reason = reason


def platform_local_time(value: Any) -> datetime.datetime | None:
    """``value`` as an aware datetime in the offset it names (UTC when it names none)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise NotATime(value, NOT_TEXT)
    if PLATFORM_TIME_FORM.fullmatch(value) is None:
        raise NotATime(value, NOT_ISO)
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            parse_date(value)  # raises for a date alone that names no day ("2026-13-01")
    except ValueError:  # well formed, but no such time ("2024-02-30T00:00:00Z", year 0)
        raise NotATime(value, NO_SUCH_TIME) from None
    if parsed is None:
        raise NotATime(value, NOT_ISO)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=datetime.UTC)
    offset = parsed.utcoffset()
    if offset is None or abs(offset) >= MAX_OFFSET:
        raise NotATime(value, FAR_OFFSET)
    return parsed


@overload
def platform_time(value: Any, *, required: Literal[True]) -> datetime.datetime: ...
@overload
def platform_time(value: Any, *, required: bool = False) -> datetime.datetime | None: ...
def platform_time(value: Any, *, required: bool = False) -> datetime.datetime | None:
    """``value`` as an aware UTC datetime (:func:`platform_local_time`, converted);
    ``required``: an absent value (``None``, ``""``) is refused too."""
    parsed = platform_local_time(value)
    if parsed is None:
        if required:
            raise NotATime(value, ABSENT)
        return None
    try:
        return parsed.astimezone(datetime.UTC)
    except OverflowError:  # "9999-12-31T23:59:59-23:59": no such UTC time
        raise NotATime(value, OUT_OF_RANGE) from None


def platform_time_or_none(value: Any) -> datetime.datetime | None:
    """:func:`platform_time`, with a refused value read as unknown (``None``): for a time
    that is optional where it arrives (an SSO attribute, a session check's answer)."""
    try:
        return platform_time(value)
    except NotATime:
        return None


def platform_time_text(value: datetime.datetime) -> str:
    """``value`` as the platform's time text, the one rule for every time the app writes
    (a Connec! ``$filter``, a watermark, an Account API field): ISO 8601 in UTC with a
    ``Z``, the year in four digits (``0001-01-01T00:00:00Z``), microseconds when there are
    some. A naive ``value`` is UTC, as :func:`platform_time` reads a time without offset;
    :func:`platform_time` reads every text this gives back to the same moment; a moment
    with no UTC time (``0001-01-01T00:00:00+01:00``) raises :class:`NotATime`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    try:
        utc = value.astimezone(datetime.UTC)
    except OverflowError:
        raise NotATime(value, OUT_OF_RANGE) from None
    return utc.replace(tzinfo=None).isoformat() + "Z"


def excerpt(value: Any) -> str:
    """``repr(value)`` cut short, for messages and logs (repr escapes NUL and surrogates)."""
    text = repr(value)
    return text if len(text) <= 100 else text[:99] + "…"
