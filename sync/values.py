"""Connec! values and their conversion to and from model fields: Connec! ids and
timestamps, and one JSON value to a model field's Python value (or a
:class:`MappingError` naming the problem). The declarations that use them are in
:mod:`sync.mappers`, which re-exports these names.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping
from typing import Any

from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.dateparse import parse_datetime

from maestrano_integration.strict_input import InputRefused, check_value, text_problem


class MappingError(ValueError):
    """One record cannot be mapped: the importer records ``str(error)`` and skips it."""


def connec_id_of(value: Any) -> str | None:
    """The Connec! id of a record id or reference, plain or in external-ids form.

    With ``CONNEC-EXTERNAL-IDS: true``, ids are lists of ``{"realm", "provider",
    "id"}`` and Connec!'s own entry has provider ``connec`` (docs/protocol.md, 'External ids').
    """
    if value is None or value == "":
        return None
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, Mapping) and entry.get("provider") == "connec":
                return connec_id_of(entry.get("id"))
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise MappingError(f"not a Connec! id: {_excerpt(value)}")
    if problem := text_problem(value):
        # Looked up in IdMap: PostgreSQL refuses the query itself.
        raise MappingError(f"not a Connec! id: {problem}")
    return value


def connec_time(value: Any) -> datetime.datetime | None:
    """A Connec! timestamp (``updated_at``) as an aware datetime; ``None`` when absent.

    Raises :class:`MappingError` when present but not an ISO 8601 date-time
    (a number, ``"2024-02-30T00:00:00Z"``, an offset of 99 hours). A time
    without offset is UTC, so that every timestamp compares with every other.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MappingError(f"not a date-time: {_excerpt(value)}")
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well formed, but no such time
        parsed = None
    if parsed is None:
        raise MappingError(f"not a date-time: {_excerpt(value)}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def connec_time_or_none(value: Any) -> datetime.datetime | None:
    """:func:`connec_time`, ``None`` for what it refuses (ordering, watermarks)."""
    try:
        return connec_time(value)
    except MappingError:
        return None


def _excerpt(value: Any) -> str:
    """``repr(value)`` cut short, for messages (repr escapes NUL and surrogates)."""
    text = repr(value)
    return text if len(text) <= 100 else text[:99] + "…"


def to_local_value(field: models.Field, value: Any, instance: models.Model) -> Any:
    """Convert and validate a Connec! JSON value for a model field.

    Uses the field's own ``clean`` (type, choices, max length, digits), so a bad
    value is reported with Django's message rather than failing the page's SQL.
    Any JSON value gives a value or a :class:`ValidationError`, never another
    exception: the record is then parked with the message (``sync.importer``).
    """
    if value is None:
        if field.null:
            return None
        if isinstance(field, (models.CharField, models.TextField)):
            return ""
        if field.has_default():
            return field.get_default()
    try:
        if isinstance(value, (dict, list)):
            check_value(value)
        elif isinstance(value, str):
            if problem := text_problem(value):
                raise ValidationError(problem)
            if _is_plain_text_field(field) and (value or field.blank):
                max_length = field.max_length
                if max_length is None or len(value) <= max_length:
                    return value  # what field.clean returns, without its machinery
        elif isinstance(value, float):
            check_value(value)
    except InputRefused as error:
        raise ValidationError(str(error)) from None
    try:
        return field.clean(_python_value(field, value), instance)
    except (TypeError, ValueError, ArithmeticError):
        # Django's fields raise these for some values (int(float("inf")), a bad datetime).
        raise ValidationError(f"not a valid {_field_kind(field)}: {_excerpt(value)}") from None


_PLAIN_TEXT_FIELDS: dict[models.Field, bool] = {}


def _is_plain_text_field(field: models.Field) -> bool:
    """A ``CharField`` / ``TextField`` whose ``clean`` of a safe string only checks its
    length and blankness: no choices, no validators but Django's own (max length, NUL)."""
    known = _PLAIN_TEXT_FIELDS.get(field)
    if known is None:
        known = (
            type(field) in (models.CharField, models.TextField)
            and not field.choices
            and all(
                isinstance(
                    validator,
                    (validators.MaxLengthValidator, validators.ProhibitNullCharactersValidator),
                )
                and (
                    not isinstance(validator, validators.MaxLengthValidator)
                    or validator.limit_value == field.max_length
                )
                for validator in field.validators
            )
        )
        _PLAIN_TEXT_FIELDS[field] = known
    return known


def _python_value(field: models.Field, value: Any) -> Any:
    """``value`` as ``field.clean`` expects it, refusing what it would accept silently."""
    if isinstance(field, models.JSONField):
        return value
    if isinstance(value, (dict, list)):
        raise ValidationError(f"not a {_field_kind(field)}: {_excerpt(value)}")
    if isinstance(field, models.BooleanField):
        if not isinstance(value, bool):
            raise ValidationError(f"not a boolean: {_excerpt(value)}")
        return value
    if isinstance(field, (models.CharField, models.TextField)):
        if not isinstance(value, str):  # a number is not a name: the record is wrong
            raise ValidationError(f"not a string: {_excerpt(value)}")
        return value
    if isinstance(value, bool):  # True is not an amount, a count or a date
        raise ValidationError(f"not a {_field_kind(field)}: {_excerpt(value)}")
    if isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField):
        if not isinstance(value, str):
            raise ValidationError(f"not a date: {_excerpt(value)}")
        if "T" in value:
            # Connec! sends dates as midnight datetimes ("2016-10-04T00:00:00Z").
            try:
                return connec_time(value).date()
            except MappingError:
                raise ValidationError(f"not a date: {_excerpt(value)}") from None
        return value
    if isinstance(field, models.DateTimeField):
        if not isinstance(value, str):
            raise ValidationError(f"not a date-time: {_excerpt(value)}")
        try:
            return connec_time(value)
        except MappingError as error:
            raise ValidationError(str(error)) from None
    if isinstance(field, models.DecimalField) and isinstance(value, float):
        return decimal.Decimal(repr(value))
    if isinstance(field, (models.IntegerField, models.AutoField)) and isinstance(value, float):
        if not value.is_integer():
            raise ValidationError(f"not a whole number: {_excerpt(value)}")
        return int(value)
    return value


def _field_kind(field: models.Field) -> str:
    return str(field.description).split(" (")[0].lower() if field.description else "value"


def to_connec_value(value: Any) -> Any:
    """A local value as Connec! JSON (numbers as numbers, dates as ISO strings)."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value
