"""The Account API's rules (docs/protocol.md, 'Account API').

Selectors scope every query to the calling app (an app sees only its own bills
and the groups and users that use it); services validate and write. Views in
``maestrano_sandbox.views.account_api`` only translate HTTP to these calls.

List filters (query parameters): ``<attribute>=<value>`` (exact), ``<attribute>_in=a,b``,
``<attribute>_not=<value>``, and comparisons ``_before`` (<=), ``_after`` (>=),
``_strictly_before`` (<), ``_strictly_after`` (>), ``_greater_than`` (>),
``_greater_than_or_equal`` (>=), ``_lower_than`` (<), ``_lower_than_or_equal`` (<=).
Pagination: ``limit`` (default 100, at most 1000) and ``offset``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from maestrano_integration.times import NotATime, excerpt, platform_time

from .models import Bill, Group, PlatformUser, RecurringBill, RegisteredApp
from .sessions import iso_utc

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_CURRENCY = "AUD"
#: Upper bounds that keep values inside the database columns (and sane).
MAX_CENTS = 10**12
MAX_CYCLES = 10_000

#: ISO 4217 alphabetic codes in use (plus a few common historical/fund codes).
_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS
    INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR
    PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW
    UZS VED VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())

#: What every refused time is told (docs/protocol.md, 'Account API').
TIME_HINT = (
    "Send an ISO 8601 date or date-time, e.g. 2030-01-31 or 2030-01-31T00:00:00Z "
    "(no offset: UTC; an offset under 16 hours; a UTC time between years 1 and 9999)."
)

#: Longest cycle per period: ``period x frequency`` must not exceed one year.
MAX_FREQUENCY = {"Day": 365, "Week": 52, "SemiMonth": 1, "Month": 12, "Year": 1}


class AccountApiError(Exception):
    """A refused Account API call: HTTP ``status`` and the envelope's ``errors``."""

    def __init__(self, status: int, errors: Mapping[str, list[str]]) -> None:
        super().__init__(f"{status}: {dict(errors)}")
        self.status = status
        self.errors = dict(errors)


# --- Serialization ----------------------------------------------------------------------
def _time(value: dt.datetime | None) -> str | None:
    return iso_utc(value) if value else None


def serialize_bill(bill: Bill) -> dict[str, Any]:
    return {
        "object": "account_bill",
        "id": bill.uid,
        "group_id": bill.group.uid,
        "price_cents": bill.price_cents,
        "description": bill.description,
        "currency": bill.currency,
        "units": str(bill.units),
        "status": bill.status,
        "period_started_at": _time(bill.period_started_at),
        "period_ended_at": _time(bill.period_ended_at),
        "created_at": _time(bill.created_at),
        "updated_at": _time(bill.updated_at),
    }


def serialize_recurring_bill(bill: RecurringBill) -> dict[str, Any]:
    return {
        "object": "account_recurring_bill",
        "id": bill.uid,
        "group_id": bill.group.uid,
        "price_cents": bill.price_cents,
        "description": bill.description,
        "currency": bill.currency,
        "period": bill.period,
        "frequency": bill.frequency,
        "cycles": bill.cycles,
        "start_date": _time(bill.start_date),
        "initial_cents": bill.initial_cents,
        "status": bill.status,
        "created_at": _time(bill.created_at),
        "updated_at": _time(bill.updated_at),
    }


def serialize_user(user: PlatformUser) -> dict[str, Any]:
    return {
        "object": "account_user",
        "id": user.uid,
        "name": user.name,
        "surname": user.surname,
        "email": user.email,
        "company_name": user.company_name,
        "country": user.country,
        "created_at": _time(user.created_at),
        "updated_at": _time(user.updated_at),
    }


def serialize_group(group: Group) -> dict[str, Any]:
    return {
        "object": "account_group",
        "id": group.uid,
        "name": group.name,
        "email": group.email,
        "has_credit_card": group.has_credit_card,
        "free_trial_end_at": _time(group.free_trial_end_at),
        "currency": group.currency,
        "country": group.country,
        "city": group.city,
        "timezone": group.timezone,
        "created_at": _time(group.created_at),
        "updated_at": _time(group.updated_at),
    }


# --- Recurring bill status ------------------------------------------------------------
def add_period(start: dt.datetime, period: str, count: int) -> dt.datetime:
    """``start`` plus ``count`` periods (months keep the day, clamped to the month's end)."""
    if period == "Day":
        return start + dt.timedelta(days=count)
    if period == "Week":
        return start + dt.timedelta(weeks=count)
    if period == "SemiMonth":
        months, half = divmod(count, 2)
        return add_period(start, "Month", months) + dt.timedelta(days=15 * half)
    months = count * (12 if period == "Year" else 1)
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    days_in_month = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return start.replace(year=year, month=month, day=min(start.day, days_in_month[month - 1]))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def current_recurring_status(bill: RecurringBill, *, now: dt.datetime | None = None) -> str:
    """submitted (not started) → active → expired (all ``cycles`` charged); cancelled stays."""
    if bill.status == RecurringBill.CANCELLED:
        return bill.status
    now = now or timezone.now()
    if now < bill.start_date:
        return RecurringBill.SUBMITTED
    if bill.cycles and now >= add_period(
        bill.start_date, bill.period, bill.cycles * bill.frequency
    ):
        return RecurringBill.EXPIRED
    return RecurringBill.ACTIVE


def refresh_recurring_statuses(bills: list[RecurringBill]) -> None:
    for bill in bills:
        status = current_recurring_status(bill)
        if status != bill.status:
            bill.status = status
            RecurringBill.objects.filter(pk=bill.pk).update(status=status)


# --- Resources and filters -----------------------------------------------------------------
@dataclass(frozen=True)
class Attribute:
    field: str
    parse: Callable[[str], Any]


def _parse_text(value: str) -> str:
    return value


def _parse_int(value: str) -> int:
    return int(value)


class NotAColumnValue(ValueError):
    """A filter value that parses but that its column cannot hold; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_units(value: str) -> Decimal:
    """A bill's ``units`` (``Bill.units``: 10 digits, 2 of them decimals).

    A number the column cannot hold is refused: PostgreSQL cannot even compare the
    column with ``1e999999999999`` or ``1e-20000`` ("value overflows numeric format").
    """
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite():  # NaN, sNaN, Infinity: no bill has them, no database compares them
        raise ValueError(value)
    column = Bill._meta.get_field("units")
    step = Decimal(1).scaleb(-column.decimal_places)
    try:
        held = number.quantize(step, context=Context(prec=column.max_digits))
    except InvalidOperation:  # more digits before the point than the column has
        held = None
    if held != number:
        whole = column.max_digits - column.decimal_places
        raise NotAColumnValue(
            f"units have at most {whole} digits before the point and "
            f"{column.decimal_places} after it"
        )
    return held


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise ValueError(value)
    return lowered in ("true", "1")


#: A time with an offset, written in a URL by hand: the query string read its "+" as a space.
_OFFSET_READ_AS_SPACE = re.compile(r"(T\S*) (\d{2}(?::?\d{2})?)$")


def _parse_query_time(value: str) -> dt.datetime:
    """A filter's time, by the platform's one rule (:func:`platform_time`, required); an
    offset whose "+" the query string read as a space (``...T10:00:00 02:00``) has it back."""
    return platform_time(_OFFSET_READ_AS_SPACE.sub(r"\1+\2", value), required=True)


COMMON = {
    "id": Attribute("uid", _parse_text),
    "created_at": Attribute("created_at", _parse_query_time),
    "updated_at": Attribute("updated_at", _parse_query_time),
}
BILL_ATTRIBUTES = {
    **COMMON,
    "group_id": Attribute("group__uid", _parse_text),
    "price_cents": Attribute("price_cents", _parse_int),
    "description": Attribute("description", _parse_text),
    "currency": Attribute("currency", _parse_text),
    "units": Attribute("units", _parse_units),
    "status": Attribute("status", _parse_text),
    "period_started_at": Attribute("period_started_at", _parse_query_time),
    "period_ended_at": Attribute("period_ended_at", _parse_query_time),
}
RECURRING_BILL_ATTRIBUTES = {
    **{k: v for k, v in BILL_ATTRIBUTES.items() if not k.startswith("period_") and k != "units"},
    "period": Attribute("period", _parse_text),
    "frequency": Attribute("frequency", _parse_int),
    "cycles": Attribute("cycles", _parse_int),
    "start_date": Attribute("start_date", _parse_query_time),
    "initial_cents": Attribute("initial_cents", _parse_int),
}
USER_ATTRIBUTES = {
    **COMMON,
    "group_id": Attribute("memberships__group__uid", _parse_text),
    "name": Attribute("name", _parse_text),
    "surname": Attribute("surname", _parse_text),
    "email": Attribute("email", _parse_text),
    "company_name": Attribute("company_name", _parse_text),
    "country": Attribute("country", _parse_text),
}
GROUP_ATTRIBUTES = {
    **COMMON,
    "group_id": Attribute("uid", _parse_text),
    "name": Attribute("name", _parse_text),
    "email": Attribute("email", _parse_text),
    "has_credit_card": Attribute("has_credit_card", _parse_bool),
    "free_trial_end_at": Attribute("free_trial_end_at", _parse_query_time),
    "currency": Attribute("currency", _parse_text),
    "country": Attribute("country", _parse_text),
    "city": Attribute("city", _parse_text),
    "timezone": Attribute("timezone", _parse_text),
}

#: Suffix → Django lookup, longest suffixes first so ``_strictly_before`` wins over ``_before``.
OPERATORS = [
    ("_greater_than_or_equal", "gte"),
    ("_lower_than_or_equal", "lte"),
    ("_strictly_before", "lt"),
    ("_strictly_after", "gt"),
    ("_greater_than", "gt"),
    ("_lower_than", "lt"),
    ("_before", "lte"),
    ("_after", "gte"),
    ("_not", "not"),
    ("_in", "in"),
]
PAGINATION_PARAMS = {"limit", "offset"}


@dataclass(frozen=True)
class Resource:
    name: str
    singular: str
    attributes: dict[str, Attribute]
    serialize: Callable[[Any], dict[str, Any]]
    queryset: Callable[[RegisteredApp], QuerySet]
    writable: bool = False


def _bills(app: RegisteredApp) -> QuerySet:
    return Bill.objects.filter(app=app).select_related("group")


def _recurring_bills(app: RegisteredApp) -> QuerySet:
    return RecurringBill.objects.filter(app=app).select_related("group")


def _users(app: RegisteredApp) -> QuerySet:
    return PlatformUser.objects.filter(memberships__group__apps=app).distinct()


def _groups(app: RegisteredApp) -> QuerySet:
    return Group.objects.filter(apps=app)


RESOURCES = {
    "bills": Resource("bills", "bill", BILL_ATTRIBUTES, serialize_bill, _bills, True),
    "recurring_bills": Resource(
        "recurring_bills",
        "recurring bill",
        RECURRING_BILL_ATTRIBUTES,
        serialize_recurring_bill,
        _recurring_bills,
        True,
    ),
    "users": Resource("users", "user", USER_ATTRIBUTES, serialize_user, _users),
    "groups": Resource("groups", "group", GROUP_ATTRIBUTES, serialize_group, _groups),
}


def _filter_lookup(resource: Resource, param: str) -> tuple[Attribute, str] | None:
    if param in resource.attributes:
        return resource.attributes[param], "exact"
    for suffix, lookup in OPERATORS:
        if param.endswith(suffix) and param[: -len(suffix)] in resource.attributes:
            return resource.attributes[param[: -len(suffix)]], lookup
    return None


def filter_queryset(queryset: QuerySet, resource: Resource, params: Mapping[str, str]) -> QuerySet:
    """Apply the query-string filters; unknown parameters and bad values are 400 errors."""
    errors: dict[str, list[str]] = {}
    for param, value in params.items():
        if param in PAGINATION_PARAMS:
            continue
        found = _filter_lookup(resource, param)
        if found is None:
            errors[param] = [
                f"Unknown filter {param!r}. Filter on: {', '.join(sorted(resource.attributes))} "
                "(optionally with a suffix: _before, _after, _strictly_before, _strictly_after, "
                "_greater_than, _lower_than, _in, _not)."
            ]
            continue
        attribute, lookup = found
        try:
            if lookup == "in":
                parsed: Any = [attribute.parse(item) for item in value.split(",") if item]
            else:
                parsed = attribute.parse(value)
        except NotATime as error:
            errors[param] = [
                f"Invalid value {excerpt(value)} for {param}: {error.reason}. {TIME_HINT}"
            ]
            continue
        except NotAColumnValue as error:
            errors[param] = [f"Invalid value {excerpt(value)} for {param}: {error.reason}."]
            continue
        except (ValueError, TypeError):
            errors[param] = [f"Invalid value {excerpt(value)} for {param}."]
            continue
        if lookup == "not":
            queryset = queryset.exclude(**{attribute.field: parsed})
        else:
            queryset = queryset.filter(**{f"{attribute.field}__{lookup}": parsed})
    if errors:
        raise AccountApiError(400, errors)
    return queryset


#: Larger offsets overflow the databases' OFFSET (a 64-bit integer).
MAX_OFFSET = 2**62


def _pagination(params: Mapping[str, str]) -> tuple[int, int]:
    errors = {}
    values = {}
    for name, default, maximum in (("limit", DEFAULT_LIMIT, MAX_LIMIT), ("offset", 0, MAX_OFFSET)):
        raw = params.get(name)
        try:
            values[name] = default if raw in (None, "") else int(raw)
        except ValueError:
            errors[name] = [f"{name} must be an integer."]
            continue
        if values[name] < (1 if name == "limit" else 0) or values[name] > maximum:
            errors[name] = [f"{name} must be between {1 if name == 'limit' else 0} and {maximum}."]
    if errors:
        raise AccountApiError(400, errors)
    return values["limit"], values["offset"]


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def list_objects(*, app: RegisteredApp, resource: Resource, params: Mapping[str, str]) -> Page:
    limit, offset = _pagination(params)
    queryset = filter_queryset(resource.queryset(app), resource, params).order_by(
        "created_at", "pk"
    )
    total = queryset.count()
    objects = list(queryset[offset : offset + limit])
    if resource.name == "recurring_bills":
        refresh_recurring_statuses(objects)
    return Page([resource.serialize(o) for o in objects], total, limit, offset)


def get_object(*, app: RegisteredApp, resource: Resource, uid: str) -> Model:
    found = resource.queryset(app).filter(uid=uid).first()
    if found is None:
        raise AccountApiError(
            404, {"id": [f"No {resource.singular} {uid!r} for this application."]}
        )
    if isinstance(found, RecurringBill):
        refresh_recurring_statuses([found])
    return found


# --- Creation -------------------------------------------------------------------------------
# DRF serializers. Their fields answer the platform's messages; an empty value ("" or
# null) is an absent one; every problem of a payload is answered at once (the checks
# across fields too, see :meth:`_CreateSerializer.to_internal_value`).
def _absent(data: Any) -> bool:
    return data is empty or data is None or data == ""


class _Field(serializers.Field):
    default_error_messages = {"required": "This field is required."}

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if _absent(data):
            if self.required:
                self.fail("required")
            return True, self.get_default()
        return False, data

    def to_representation(self, value: Any) -> Any:
        return value


class WholeNumberField(_Field):
    default_error_messages = {
        "invalid": "Must be a whole number (an integer, no decimals).",
        "min_value": "Must be greater than or equal to {min_value}.",
        "max_value": "Must be at most {max_value}.",
    }

    def __init__(self, *, min_value: int = 0, max_value: int = MAX_CENTS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    @staticmethod
    def parse(value: Any) -> int | None:
        """``value`` as an ``int`` (a JSON integer, or ASCII digits), else ``None``."""
        digits = value.strip() if isinstance(value, str) else ""
        # ASCII digits only: "²".isdigit() is true but int("²") fails; and a bounded length.
        if isinstance(value, bool) or not (
            isinstance(value, int) or (digits.isascii() and digits.isdigit() and len(digits) < 30)
        ):
            return None
        return int(value)

    def to_internal_value(self, data: Any) -> int:
        number = self.parse(data)
        if number is None:
            self.fail("invalid")
        if number < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if number > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return number


class _TextInput(_Field):
    """A field read from a non-empty string of at most ``max_length`` characters."""

    default_error_messages = {
        "invalid": "Must be a non-empty string.",
        "max_length": "At most {max_length} characters.",
    }

    def __init__(self, *, max_length: int = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def text(self, data: Any) -> str:
        if not isinstance(data, str) or not data.strip():
            self.fail("invalid")
        if len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return data.strip()


class TextField(_TextInput):
    def to_internal_value(self, data: Any) -> str:
        return self.text(data)


class GroupField(_TextInput):
    """The uid of a group that uses the calling app (``context["app"]``)."""

    default_error_messages = {"unknown": "No group {uid!r} uses this application."}

    def to_internal_value(self, data: Any) -> Group:
        uid = self.text(data)
        group = Group.objects.filter(uid=uid, apps=self.context["app"]).first()
        if group is None:
            self.fail("unknown", uid=uid)
        return group


class TimeField(_Field):
    """A time by the platform's one rule (:func:`platform_time`): a JSON string (or form
    field) naming a moment every database stores; the error says why another is refused."""

    default_error_messages = {"invalid": "{reason}. " + TIME_HINT}

    def to_internal_value(self, data: Any) -> dt.datetime:
        try:
            return platform_time(data, required=True)
        except NotATime as error:
            self.fail("invalid", reason=error.reason.capitalize())


class CurrencyField(_Field):
    default_error_messages = {"invalid": "Must be an ISO 4217 currency code, e.g. AUD, USD, EUR."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data.upper() not in ISO_4217:
            self.fail("invalid")
        return data.upper()


class UnitsField(_Field):
    default_error_messages = {
        "invalid": "Must be a decimal number, e.g. 1.5.",
        "range": "Must be greater than 0 and below 100000000.",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            units = Decimal(str(data)).quantize(Decimal("0.01"))
            in_range = Decimal(0) < units < Decimal("100000000")
        except (InvalidOperation, ValueError):
            self.fail("invalid")
        if not in_range:
            self.fail("range")
        return units


class PeriodField(_Field):
    """``Day``, ``Week``, ``SemiMonth``, ``Month`` (any false value) or ``Year``."""

    default_error_messages = {"invalid": f"Must be one of {', '.join(RecurringBill.PERIODS)}."}

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        return (True, "Month") if data is empty or not data else (False, data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in RecurringBill.PERIODS:
            self.fail("invalid")
        return data


class _CreateSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """Every field's value or error, then :meth:`check_together` on the valid values:
        DRF's own loop stops before ``validate`` at the first field error, the platform
        answers every problem at once."""
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, field in self.fields.items():
            try:
                values[name] = field.run_validation(field.get_value(data))
            except serializers.ValidationError as error:
                errors[name] = [str(message) for message in error.detail]
            except SkipField:
                pass
        for name, message in self.check_together(values):
            errors.setdefault(name, []).append(message)
        if errors:
            # In the fields' order (items(): the stubs say iterating them gives fields, not names).
            raise serializers.ValidationError(
                {name: errors[name] for name, _field in self.fields.items() if name in errors}
            )
        return values

    def check_together(self, values: dict[str, Any]) -> list[tuple[str, str]]:
        return []


class _ChargeSerializer(_CreateSerializer):
    """What every bill has: the group it charges, the amount, what for, the currency."""

    group_id = GroupField(max_length=100)
    price_cents = WholeNumberField()
    description = TextField()
    currency = CurrencyField(default=DEFAULT_CURRENCY)


class BillSerializer(_ChargeSerializer):
    units = UnitsField(default=Decimal("1.00"))
    period_started_at = TimeField(default=None)
    period_ended_at = TimeField(default=None)

    def check_together(self, values: dict[str, Any]) -> list[tuple[str, str]]:
        started, ended = values.get("period_started_at"), values.get("period_ended_at")
        if started and ended and ended < started:
            return [("period_ended_at", "Must not be before period_started_at.")]
        return []


class RecurringBillSerializer(_ChargeSerializer):
    period = PeriodField(default="Month")
    frequency = WholeNumberField(default=1, min_value=1, max_value=MAX_FREQUENCY["Day"])
    cycles = WholeNumberField(default=None, min_value=1, max_value=MAX_CYCLES)
    initial_cents = WholeNumberField(default=0)
    start_date = TimeField(default=None)

    def check_together(self, values: dict[str, Any]) -> list[tuple[str, str]]:
        problems = []
        period = values.get("period")
        # The frequency as sent, even out of its own bounds: both rules are answered.
        frequency = WholeNumberField.parse(self.initial_data.get("frequency") or 1)
        if period in MAX_FREQUENCY and frequency is not None and frequency >= 1:
            if period == "SemiMonth" and frequency != 1:
                problems.append(("frequency", "Must be 1 when the period is SemiMonth."))
            elif frequency > MAX_FREQUENCY[period]:
                problems.append(
                    (
                        "frequency",
                        f"period x frequency must be at most one year "
                        f"(at most {MAX_FREQUENCY[period]} for {period}).",
                    )
                )
        now = timezone.now()
        today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if (values.get("start_date") or now) < today:
            problems.append(("start_date", "Must not be in the past (today or later)."))
        return problems


def _validated(serializer_class: type[_CreateSerializer], *, app: RegisteredApp, payload: Any):
    serializer = serializer_class(data=payload, context={"app": app})
    if not serializer.is_valid():
        raise AccountApiError(422, serializer.errors)
    return serializer.validated_data


def _unwrap(payload: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise AccountApiError(400, {"body": ["Send a JSON object (or form fields)."]})
    inner = payload.get(key)
    if len(payload) == 1 and isinstance(inner, Mapping):
        return inner
    return payload


@transaction.atomic(using="sandbox")
def create_bill(*, app: RegisteredApp, payload: Any) -> Bill:
    """Validate and create a bill (status ``submitted``). Raises :class:`AccountApiError` 422."""
    values = _validated(BillSerializer, app=app, payload=_unwrap(payload, "bill"))
    group = values.pop("group_id")
    bill = Bill.objects.create(app=app, group=group, **values)
    logger.info(
        "Bill created",
        extra={"app": app.api_id, "group": group.uid, "bill": bill.uid, "cents": bill.price_cents},
    )
    return bill


@transaction.atomic(using="sandbox")
def create_recurring_bill(*, app: RegisteredApp, payload: Any) -> RecurringBill:
    """Validate and create a recurring bill (docs/protocol.md, 'Recurring bills')."""
    values = _validated(
        RecurringBillSerializer, app=app, payload=_unwrap(payload, "recurring_bill")
    )
    group = values.pop("group_id")
    now = timezone.now()
    values["start_date"] = values["start_date"] or now
    bill = RecurringBill(app=app, group=group, **values)
    bill.status = current_recurring_status(bill, now=now)
    bill.save()
    logger.info(
        "Recurring bill created",
        extra={"app": app.api_id, "group": group.uid, "bill": bill.uid, "cents": bill.price_cents},
    )
    return bill


@transaction.atomic(using="sandbox")
def cancel(*, app: RegisteredApp, resource: Resource, uid: str) -> Bill | RecurringBill:
    """Cancel a bill or recurring bill; cancelling twice (or an invoiced/expired one) is a 422."""
    bill = get_object(app=app, resource=resource, uid=uid)
    assert isinstance(bill, Bill | RecurringBill)
    final = {Bill.CANCELLED, Bill.INVOICED, RecurringBill.EXPIRED}
    if bill.status in final:
        raise AccountApiError(
            422,
            {
                "status": [
                    f"The {resource.singular} {uid} is {bill.status}: it cannot be cancelled."
                ]
            },
        )
    bill.status = Bill.CANCELLED
    bill.save(update_fields=["status", "updated_at"])
    logger.info(
        "Bill cancelled", extra={"app": app.api_id, "group": bill.group.uid, "bill": bill.uid}
    )
    return bill
