"""Money and time as the company reads them: its currency, locale and timezone (Babel).

One format for each, used by every page of the example app (``crm_tags``'s
``money``, ``when`` and ``day`` filters):

- money: Babel's currency format of the company's locale, from integer cents
  (``$29.00``; never a count of cents);
- date and time: ``2 Dec 2026, 03:28 AEDT``, in the company's timezone with the zone shown;
- date: ``2 Dec 2026``.

The locale is English (the pages are in English) with the company's country as
region (``en_AU`` for an Australian company: its number, date and currency
conventions), else ``en_US``. :class:`CompanyFormatsMiddleware` activates the
company's settings for the request, Django's ``timezone.activate`` included.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

DATETIME_PATTERN = "d MMM y, HH:mm zzz"
DATE_PATTERN = "d MMM y"
DEFAULT_LOCALE = "en_US"
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class Formats:
    """A company's conventions: Babel locale, IANA timezone, ISO 4217 currency."""

    locale: str = DEFAULT_LOCALE
    timezone: str = DEFAULT_TIMEZONE
    currency: str = ""

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


_DEFAULT = Formats()
_current: contextvars.ContextVar[Formats | None] = contextvars.ContextVar(
    "crm_formats", default=None
)


def locale_for(country: str) -> str:
    """English with the country's conventions (``en_AU``), or ``en_US`` when CLDR has none."""
    if country and len(country) == 2 and country.isalpha():
        try:
            return str(Locale.parse(f"en_{country.upper()}"))
        except (UnknownLocaleError, ValueError):
            pass
    return DEFAULT_LOCALE


def timezone_name(name: str) -> str:
    """A known IANA zone, else UTC (the platform's value is not trusted blindly)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return DEFAULT_TIMEZONE
    return name if name else DEFAULT_TIMEZONE


def formats_for(company: Any) -> Formats:
    """The conventions of a company (anything with ``country``, ``timezone``, ``currency``)."""
    if company is None:
        return Formats()
    return Formats(
        locale=locale_for(getattr(company, "country", "") or ""),
        timezone=timezone_name(getattr(company, "timezone", "") or ""),
        currency=(getattr(company, "currency", "") or "").upper(),
    )


def current() -> Formats:
    """The conventions activated for this request (the defaults outside one)."""
    return _current.get() or _DEFAULT


def money(cents: int | None, currency: str = "", *, formats: Formats | None = None) -> str:
    """``2900, "USD"`` → ``$29.00`` (in the locale's way); the company's currency by default."""
    if cents is None:
        return ""
    formats = formats or current()
    code = (currency or formats.currency or "USD").upper()
    return format_currency(Decimal(cents) / 100, code, locale=formats.locale)


def amount(
    value: Decimal | float | int | None, currency: str = "", *, formats: Formats | None = None
) -> str:
    """A decimal amount (not cents), with its currency when one is known."""
    if value is None:
        return ""
    formats = formats or current()
    code = (currency or formats.currency).upper()
    if code:
        return format_currency(value, code, locale=formats.locale)
    return format_decimal(value, format="#,##0.00", locale=formats.locale)


def when(value: dt.datetime | None, *, formats: Formats | None = None) -> str:
    """A moment in the company's timezone, with the zone: ``2 Dec 2026, 03:28 AEDT``."""
    if value is None:
        return ""
    formats = formats or current()
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return format_datetime(value, DATETIME_PATTERN, tzinfo=formats.tzinfo, locale=formats.locale)


def day(value: dt.date | dt.datetime | None, *, formats: Formats | None = None) -> str:
    """A calendar day (a moment is first put in the company's timezone): ``2 Dec 2026``."""
    if value is None:
        return ""
    formats = formats or current()
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
        value = value.astimezone(formats.tzinfo).date()
    return format_date(value, DATE_PATTERN, locale=formats.locale)


class CompanyFormatsMiddleware:
    """Activates the current company's timezone and conventions for the request.

    After the authentication and session middlewares (it asks
    :func:`accounts.selectors.current_company`, cached per request). Views
    exempt from the platform session checks (the SSO views,
    ``maestrano_session_exempt``) show no company data: for them the session,
    the user and the company are not read (the defaults stay active).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(_DEFAULT)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            _current.reset(token)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> None:
        from accounts.selectors import current_company

        if getattr(view_func, "maestrano_session_exempt", False):
            return
        company = None
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            company = current_company(request)
        formats = formats_for(company)
        _current.set(formats)
        timezone.activate(formats.tzinfo)
