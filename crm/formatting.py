"""Money and time as the company reads them: its currency, locale and timezone (Babel).

One format for each, used by every page of the example app (``crm_tags``'s
``money``, ``when`` and ``day`` filters):

- money (what is billed: plans, purchases, charges, from integer cents; invoice totals and
  item prices, from decimals): named by its ISO code in the company's number format
  (``AUD 29.00``; never a count of cents, never a bare ``$`` that reads the same for US,
  Australian and a dozen other dollars);
- date and time: ``2 Dec 2026, 03:28 AEDT``, in the company's timezone with the zone shown;
- date: ``2 Dec 2026``;
- a price in another currency than the company's: about how much that is in the
  company's, when ``settings.CRM_EXCHANGE_RATES`` has both currencies (:func:`converted`).

The locale is English (the pages are in English) with the company's country as
region (``en_AU`` for an Australian company: its number, date and currency
conventions), else ``en_US``. :class:`CompanyFormatsMiddleware` activates the
company's settings for the request, Django's ``timezone.activate`` included.
"""

from __future__ import annotations

import contextlib
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
from django.conf import settings
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
    """``2900, "AUD"`` → ``AUD 29.00`` (:func:`money_with_code`); the company's currency
    by default (USD when it has none)."""
    if cents is None:
        return ""
    formats = formats or current()
    return money_with_code(cents, currency or formats.currency or "USD", formats=formats)


def amount(
    value: Decimal | float | int | None, currency: str = "", *, formats: Formats | None = None
) -> str:
    """A decimal amount (not cents: an invoice's total, an item's price), named by the ISO
    code of its currency (``currency``, else the company's) as :func:`money_with_code`
    names it: ``AUD 12.50``. Without any currency known, the number alone (no symbol
    or code is made up)."""
    if value is None:
        return ""
    formats = formats or current()
    code = (currency or formats.currency).upper()
    if code:
        return _with_code(Decimal(str(value)), code, formats=formats)
    return format_decimal(value, format="#,##0.00", locale=formats.locale)


def money_with_code(cents: int | None, currency: str, *, formats: Formats | None = None) -> str:
    """``2900, "USD"`` → ``USD 29.00``: an amount in its own currency, named by its ISO code.

    A symbol would be ambiguous (``$`` is the local dollar of every dollar locale: US,
    Australian, Canadian...), so the code takes its place, where the locale puts the
    symbol. The locale's number format, the currency's digits.
    """
    if cents is None:
        return ""
    return _with_code(Decimal(cents) / 100, currency.upper(), formats=formats or current())


def _with_code(value: Decimal, code: str, *, formats: Formats) -> str:
    """The one rule of every amount shown: ``value`` with the ISO ``code`` where the
    locale puts its currency symbol (:func:`money_with_code`, :func:`amount`)."""
    pattern = Locale.parse(formats.locale).currency_formats["standard"].pattern.split(";")[0]
    if pattern.startswith("¤"):
        pattern = "¤¤\u00a0" + pattern.lstrip("¤").lstrip("\u00a0 ")
    else:
        pattern = pattern.replace("¤", "¤¤")
    return format_currency(value, code, format=pattern, locale=formats.locale)


@dataclass(frozen=True)
class Conversion:
    """A price shown in the company's currency, at the rate table of the settings."""

    amount: str  # "AUD 44.37", in the company's currency (money_with_code)
    rate: str  # "1 USD = 1.53 AUD"
    as_of: str  # the table's date ("30 Nov 2026"; "" when it has none)


def exchange_rates() -> tuple[str, str, dict[str, Decimal]]:
    """``settings.CRM_EXCHANGE_RATES``: (base currency, as of, {currency: units per base}).

    A fixed, offline table (never fetched): indicative rates to show a price in the
    company's currency. Missing or malformed: no conversion is shown.
    """
    table = getattr(settings, "CRM_EXCHANGE_RATES", None) or {}
    base = str(table.get("base", "")).upper()
    rates: dict[str, Decimal] = {base: Decimal(1)} if base else {}
    for code, value in (table.get("rates") or {}).items():
        try:
            rate = Decimal(str(value))
        except ArithmeticError:
            continue
        if rate.is_finite() and rate > 0:
            rates[str(code).upper()] = rate
    return base, str(table.get("as_of", "")), rates


def converted(
    cents: int | None, currency: str, *, formats: Formats | None = None
) -> Conversion | None:
    """``cents`` of ``currency`` in the company's currency, at :func:`exchange_rates`.

    ``None`` when there is nothing to convert (same currency, no company currency)
    or the table has no rate for one of the two.
    """
    formats = formats or current()
    source, target = (currency or "").upper(), formats.currency
    if cents is None or not source or not target or source == target:
        return None
    _base, as_of, rates = exchange_rates()
    if source not in rates or target not in rates:
        return None
    rate = rates[target] / rates[source]
    value = (Decimal(cents) / 100 * rate).quantize(Decimal("0.01"))
    quote = format_decimal(rate, format="#,##0.####", locale=formats.locale)
    with contextlib.suppress(ValueError):  # else shown as the table says it
        as_of = day(dt.date.fromisoformat(as_of), formats=formats)
    return Conversion(
        amount=money_with_code(int(value * 100), target, formats=formats),
        rate=f"1 {source} = {quote} {target}",
        as_of=as_of,
    )


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
    :func:`maestrano_accounts.selectors.current_company`, cached per request). Views
    exempt from the platform session checks (the SSO views,
    ``maestrano_session_exempt``) show no company data: for them the session,
    the user and the company are not read (the defaults stay active). The admin is left
    to Django's rule (``TIME_ZONE``): it lists rows of every company, and one column must
    read in one zone whatever company its operator works in (docs/deploy.md).
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
        from maestrano_accounts.selectors import current_company

        if getattr(view_func, "maestrano_session_exempt", False) or _is_admin(request):
            return
        company = None
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            company = current_company(request)
        formats = formats_for(company)
        _current.set(formats)
        timezone.activate(formats.tzinfo)


def _is_admin(request: HttpRequest) -> bool:
    """A view of an admin site (``django.contrib.admin``'s URLs, whatever its namespace)."""
    match = request.resolver_match
    return match is not None and "admin" in match.app_names
