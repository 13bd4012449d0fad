"""Connec! values and their conversion to and from model fields: Connec! ids and
timestamps, and one JSON value to a model field's Python value (or a
:class:`MappingError` naming the problem). The declarations that use them are in
:mod:`maestrano_sync.mappers`, which re-exports these names.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping
from typing import Any, cast

from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models

from maestrano_integration.http import NOT_ONE_SEGMENT, path_segment_problem
from maestrano_integration.strict_input import InputRefused, check_value, text_problem
from maestrano_integration.times import (
    NotATime,
    platform_local_time,
    platform_time,
    platform_time_text,
)
from maestrano_integration.times import excerpt as _excerpt


class MappingError(ValueError):
    """One record cannot be mapped: the importer records ``str(error)`` and skips it."""


#: The longest Connec! id kept (``IdMap.connec_id`` and the other columns that hold one):
#: a longer one is refused as malformed, the same on every database.
CONNEC_ID_MAX_LENGTH = 64


def connec_id_problem(value: str) -> str | None:
    """What makes the text ``value`` no Connec! id we can keep, or ``None``.

    A Connec! id names one record: it is one segment of the record's URL
    (``/<group>/<entity>/<id>``). An id with a ``/`` or ``\\``, or ``.`` or ``..``,
    would name another path, another group's records among them (which our credentials
    open too): refused, wherever it comes from (a record's id, a reference).
    """
    if len(value) > CONNEC_ID_MAX_LENGTH:
        return f"longer than {CONNEC_ID_MAX_LENGTH} characters"
    if "/" in value or "\\" in value:
        return NOT_ONE_SEGMENT
    return path_segment_problem(value)


def foreign_group_problem(record: Mapping[str, Any], *, group_uid: str) -> str | None:
    """Why ``record`` is another group's and not the company of ``group_uid``'s, or ``None``.

    Connec! answers a group's records under that group's path; a record that says it is
    another's (its ``group_id``, when it has one, not ``group_uid``) is never stored in this
    company, wherever it came from (a page, a record fetched alone, a notification): our
    credentials open every group of the app, and a hub that mixed them up would otherwise
    put one customer's data in another's company.
    """
    value = record.get("group_id")
    if value is None or value == group_uid:
        return None
    return (
        f"another group's record: its group_id is {_excerpt(value)}, "
        f"and this company's group is {group_uid!r}"
    )


#: The provider of Connec!'s own entry in an external-ids list.
CONNEC_PROVIDER = "connec"


def record_realms(record: Mapping[str, Any]) -> frozenset[str]:
    """The realms a record's own Connec! entry may have: its ``channel_id`` and ``group_id``
    (only text: a list there would not even compare)."""
    return frozenset(
        realm
        for realm in (record.get("channel_id"), record.get("group_id"))
        if isinstance(realm, str)
    )


def connec_entry_id(ids: list[Any], *, record: Mapping[str, Any] | None = None) -> Any:
    """The id of Connec!'s own entry in an external-ids list, ``None`` when it has none.

    The one rule (docs/protocol.md, 'External ids'): the list holds ``{provider, realm,
    id}`` entries, one per application that knows the record; Connec!'s own has provider
    ``connec`` and a non-blank text id. When several have, the one whose realm is among
    those of ``record``, the record the list is read from (:func:`record_realms`: its
    ``channel_id`` or ``group_id``, read only then), is taken;
    entries of other providers (ours included) are never the Connec! id, whatever their
    place in the list. Raises :class:`MappingError` when several Connec! entries leave the
    choice open.
    """
    candidates = [
        entry
        for entry in ids
        if isinstance(entry, Mapping)
        and entry.get("provider") == CONNEC_PROVIDER
        and _usable_entry_id(entry.get("id"))
    ]
    if not candidates:
        return None
    if len(candidates) > 1:
        realms = record_realms(record) if record is not None else frozenset()
        candidates = [
            entry
            for entry in candidates
            if isinstance(entry.get("realm"), str) and entry["realm"] in realms
        ]
        if len(candidates) != 1:
            raise MappingError(
                f"has several entries with provider {CONNEC_PROVIDER!r} and not exactly one "
                "of them in the record's realm (channel_id or group_id)"
            )
    return candidates[0]["id"]


def our_entry_ids(ids: Any, *, provider: str, realm: str) -> list[str]:
    """The ids of the entries of ``ids`` (a record's ``id`` list) that are ours: provider
    ``provider`` (the preset's api id) and realm ``realm`` (the company's group uid), each
    the key of a local object the record was pushed from (docs/protocol.md, 'External
    ids'); none for a plain id. Text only as Connec! wrote it: whether a local object has
    that key is the caller's question."""
    if not isinstance(ids, list):
        return []
    return [
        str(entry["id"])
        for entry in ids
        if isinstance(entry, Mapping)
        and entry.get("provider") == provider
        and entry.get("realm") == realm
        and entry.get("id")
    ]


def _usable_entry_id(value: Any) -> bool:
    """Connec!'s ids are text: an entry with a number, a blank or no id is none of its."""
    return isinstance(value, str) and bool(value.strip())


def connec_id_of(value: Any, *, record: Mapping[str, Any] | None = None) -> str | None:
    """The Connec! id of a record id or reference, plain or in external-ids form.

    With ``CONNEC-EXTERNAL-IDS: true``, ids are lists of ``{"realm", "provider",
    "id"}`` and Connec!'s own entry is chosen by :func:`connec_entry_id` (``record``: the
    record the value is read from, whose realms choose among several). ``None`` when there is no
    id (or no Connec! entry); :class:`MappingError` when it is not one we can keep.
    """
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return connec_id_of(connec_entry_id(value, record=record))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        raise MappingError(f"not a Connec! id: {_excerpt(value)}")
    elif problem := text_problem(value):
        # Looked up in IdMap: PostgreSQL refuses the query itself.
        raise MappingError(f"not a Connec! id: {problem}")
    if problem := connec_id_problem(value):
        raise MappingError(f"not a Connec! id: {problem}")
    return value


def record_connec_id(record: Mapping[str, Any]) -> str | None:
    """The Connec! id of ``record`` (its ``id``, read by :func:`connec_id_of` in the record's
    realms): the rule of the import, notifications, reconciliation and push answers alike."""
    return connec_id_of(record.get("id"), record=record)


def connec_time(value: Any) -> datetime.datetime | None:
    """A Connec! timestamp (``updated_at``) as an aware UTC datetime; ``None`` when absent.

    Raises :class:`MappingError` when present but not an ISO 8601 date-time
    (a number, ``"2024-02-30T00:00:00Z"``, an offset of 99 hours or of 16 hours or
    more, a time whose UTC falls outside years 1 to 9999). A time without offset is
    UTC, so that every timestamp compares with every other and every database stores it.
    The rule is the platform's, :func:`maestrano_integration.times.platform_time`.
    """
    try:
        return platform_time(value)
    except NotATime as refused:
        raise MappingError(str(refused)) from None


def _connec_local_time(value: Any) -> datetime.datetime | None:
    """:func:`connec_time` before its conversion to UTC (the offset the value names): for a
    date sent as a midnight date-time, whose day is the one it names."""
    try:
        return platform_local_time(value)
    except NotATime as refused:
        raise MappingError(str(refused)) from None


def connec_time_or_none(value: Any) -> datetime.datetime | None:
    """:func:`connec_time`, ``None`` for what it refuses (ordering, watermarks)."""
    try:
        return connec_time(value)
    except MappingError:
        return None


def to_local_value(field: models.Field, value: Any, instance: models.Model) -> Any:
    """Convert and validate a Connec! JSON value for a model field.

    Uses the field's own ``clean`` (type, choices, max length, digits), so a bad
    value is reported with Django's message rather than failing the page's SQL.
    Any JSON value gives a value or a :class:`ValidationError`, never another
    exception: the record is then parked with the message (``maestrano_sync.importer``).
    The work is done by the field's converter (:func:`converter_for`).
    """
    return converter_for(field)(value, instance)


#: A field's converter: (Connec! JSON value, instance) → the field's value.
Converter = Callable[[Any, models.Model], Any]

_CONVERTERS: dict[models.Field, Converter] = {}


def converter_for(field: models.Field) -> Converter:
    """What :func:`to_local_value` does for ``field``, with every decision that depends
    on the field alone taken once (its kind, its ``clean``, its validators): the
    import calls it for every mapped value of every record."""
    converter = _CONVERTERS.get(field)
    if converter is None:
        converter = _CONVERTERS[field] = _make_converter(field)
    return converter


def _make_converter(field: models.Field) -> Converter:
    null = field.null
    blank = field.blank
    max_length = field.max_length
    is_text = isinstance(field, (models.CharField, models.TextField))
    plain_text = _is_plain_text_field(field)
    has_default = field.has_default()
    python_value = _python_value_function(field)
    clean = _clean_function(field)

    def convert(value: Any, instance: models.Model) -> Any:
        if value is None:
            if null:
                return None
            if is_text:
                return ""
            if has_default:
                return field.get_default()
        try:
            if isinstance(value, str):
                if problem := text_problem(value):
                    raise ValidationError(problem)
                if (
                    plain_text
                    and (value or blank)
                    and (max_length is None or len(value) <= max_length)
                ):
                    return value  # what field.clean returns, without its machinery
            elif isinstance(value, (dict, list, float)):
                check_value(value)
        except InputRefused as error:
            raise ValidationError(str(error)) from None
        try:
            return clean(python_value(value), instance)
        except (TypeError, ValueError, ArithmeticError):
            # Django's fields raise these for some values (int(float("inf")), a bad datetime).
            raise ValidationError(f"not a valid {_field_kind(field)}: {_excerpt(value)}") from None

    return convert


def text_shortcut(field: models.Field) -> tuple[int | None, bool] | None:
    """``(max_length, blank)`` when the field's converter returns a safe string as it is
    if it is no longer than ``max_length`` (``None``: no limit) and not empty unless
    ``blank`` (plain text fields, the first rule of the converter); ``None`` otherwise.
    For code that applies many values and checks these itself (:mod:`maestrano_sync.field_apply`);
    any other value goes to the converter."""
    if not _is_plain_text_field(field):
        return None
    return field.max_length, field.blank


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
    return _python_value_function(field)(value)


def _python_value_function(field: models.Field) -> Callable[[Any], Any]:
    """:func:`_python_value` for ``field``: the field's kind decided once."""

    def refuse(value: Any, what: str | None = None) -> ValidationError:
        # The field's kind in the language active when the value is refused.
        return ValidationError(f"not a {what or _field_kind(field)}: {_excerpt(value)}")

    if isinstance(field, models.JSONField):
        return lambda value: value

    if isinstance(field, models.BooleanField):

        def boolean(value: Any) -> Any:
            if isinstance(value, (dict, list)):
                raise refuse(value)
            if not isinstance(value, bool):
                raise refuse(value, "boolean")
            return value

        return boolean

    if isinstance(field, (models.CharField, models.TextField)):

        def text(value: Any) -> Any:
            if isinstance(value, (dict, list)):
                raise refuse(value)
            if not isinstance(value, str):  # a number is not a name: the record is wrong
                raise refuse(value, "string")
            return value

        return text

    def not_structured(value: Any) -> None:
        if isinstance(value, (dict, list)):
            raise refuse(value)
        if isinstance(value, bool):  # True is not an amount, a count or a date
            raise refuse(value)

    if isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField):

        def date(value: Any) -> Any:
            not_structured(value)
            if not isinstance(value, str):
                raise refuse(value, "date")
            # Connec! sends dates as midnight datetimes ("2016-10-04T00:00:00Z"), or as
            # dates: either read by the platform's rule of times (not by the field's own
            # parse, which takes ISO forms the platform never sends: "2024-W22-5").
            try:
                local = _connec_local_time(value)
            except MappingError:
                raise refuse(value, "date") from None
            if local is not None:  # the day the value names, not its day in UTC
                return local.date()
            return value

        return date

    if isinstance(field, models.DateTimeField):

        def date_time(value: Any) -> Any:
            not_structured(value)
            if not isinstance(value, str):
                raise refuse(value, "date-time")
            try:
                return connec_time(value)
            except MappingError as error:
                raise ValidationError(str(error)) from None

        return date_time

    if isinstance(field, models.DecimalField):

        def decimal_value(value: Any) -> Any:
            not_structured(value)
            if isinstance(value, float):
                return decimal.Decimal(repr(value))
            return value

        return decimal_value

    if isinstance(field, (models.IntegerField, models.AutoField)):

        def integer(value: Any) -> Any:
            not_structured(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise refuse(value, "whole number")
                return int(value)
            return value

        return integer

    def other(value: Any) -> Any:
        not_structured(value)
        return value

    return other


# --- field.clean, its machinery taken once ---------------------------------------------------

#: A validator's check: ``True`` when the validator surely accepts the value; ``False``
#: when it may refuse it (``field.clean`` then runs, for its exact message).
_Check = Callable[[Any], bool]


def _clean_function(field: models.Field) -> Callable[[Any, models.Model], Any]:
    """``field.clean`` for fields that use Django's own ``clean``, ``validate`` and
    ``run_validators``: ``to_python`` as ``clean`` calls it, then the same checks as
    ``validate`` and the validators, with the choices in a set and the common validators
    as plain comparisons. Whenever one of them may fail, ``field.clean`` itself runs, so
    that a refused value gets Django's own message; a value accepted here is one
    ``field.clean`` returns unchanged (tests/sync/test_converters.py compares the two).
    Other fields: their own ``clean``.
    """
    cls = type(field)
    if (
        cls.clean is not models.Field.clean
        or cls.validate is not models.Field.validate
        or cls.run_validators is not models.Field.run_validators
    ):
        return field.clean
    choice_keys = _choice_keys(field)
    if field.choices is not None and choice_keys is None:
        return field.clean
    checks = [_validator_check(validator) for validator in field.validators]
    to_python = field.to_python
    editable = field.editable
    null = field.null
    blank = field.blank
    empty = field.empty_values
    # Django's own empty values: a value of a type that never equals one skips the
    # comparisons (about 1 µs for a Decimal, whose comparisons with a list or a dict go
    # through the numeric ABCs). A field may declare other empty values.
    never_empty = _NEVER_EMPTY if tuple(empty) == tuple(validators.EMPTY_VALUES) else frozenset()
    slow = field.clean

    def clean(value: Any, instance: models.Model) -> Any:
        python = to_python(value)
        is_empty = type(python) not in never_empty and python in empty
        if editable:
            if choice_keys is not None and not is_empty:
                try:
                    known = python in choice_keys
                except TypeError:  # unhashable
                    known = False
                if not known:
                    return slow(value, instance)
            if python is None and not null:
                return slow(value, instance)
            if not blank and is_empty:
                return slow(value, instance)
        if not is_empty:
            for check in checks:
                if not check(python):
                    return slow(value, instance)
        return python

    return clean


#: Types whose values never equal one of Django's empty values (``None``, ``""``, ``[]``,
#: ``()``, ``{}``), subclasses left out.
_NEVER_EMPTY = frozenset(
    {decimal.Decimal, int, float, bool, datetime.date, datetime.datetime, datetime.time}
)


def _choice_keys(field: models.Field) -> frozenset | None:
    """The values ``field.validate`` accepts as choices (``None``: no choices, choices from
    a callable, which may change, or some that a set cannot hold)."""
    choices = field.choices
    if choices is None or type(choices) not in (list, tuple):
        return None
    keys: list[Any] = []
    for option_key, option_value in choices:
        if isinstance(option_value, (list, tuple)):
            keys.extend(optgroup_key for optgroup_key, _ in option_value)
        else:
            keys.append(option_key)
    try:
        return frozenset(keys)
    except TypeError:
        return None


def _validator_check(validator: Callable[[Any], None]) -> _Check:
    cls = type(validator)
    limit = getattr(validator, "limit_value", None)
    if cls in _COMPARISONS and not callable(limit):
        compare = _COMPARISONS[cls]

        def within(value: Any) -> bool:
            try:
                return compare(value, limit)
            except Exception:  # field.clean runs again, raising what it raises
                return False

        return within
    if cls is validators.ProhibitNullCharactersValidator:
        return lambda value: "\x00" not in str(value)
    if cls is validators.EmailValidator:
        return _email_check(cast(validators.EmailValidator, validator))

    def call(value: Any) -> bool:
        try:
            validator(value)
        except Exception:  # field.clean runs again, raising what it raises
            return False
        return True

    return call


#: ``BaseValidator`` subclasses: (value, limit) → accepted, as their ``clean`` and
#: ``compare`` say.
_COMPARISONS: dict[type, Callable[[Any, Any], bool]] = {
    validators.MaxLengthValidator: lambda value, limit: not len(value) > limit,
    validators.MinLengthValidator: lambda value, limit: not len(value) < limit,
    validators.MaxValueValidator: lambda value, limit: not value > limit,
    validators.MinValueValidator: lambda value, limit: not value < limit,
}


def _email_check(validator: validators.EmailValidator) -> _Check:
    """``EmailValidator.__call__`` with the verdict on each domain kept: its domain check
    (a large regular expression) depends on the domain alone, and the addresses of one
    company share a few domains."""
    domains: dict[str, bool] = {}
    allowlist = validator.domain_allowlist
    match_user = validator.user_regex.match  # the compiled expression's, not the lazy proxy's

    def check(value: Any) -> bool:
        if not isinstance(value, str) or not value or "@" not in value or len(value) > 320:
            return False
        user_part, domain_part = value.rsplit("@", 1)
        if not match_user(user_part):
            return False
        if domain_part in allowlist:
            return True
        known = domains.get(domain_part)
        if known is None:
            known = bool(validator.validate_domain_part(domain_part))
            if len(domains) < 1024:
                domains[domain_part] = known
        return known

    return check


def _field_kind(field: models.Field) -> str:
    return str(field.description).split(" (")[0].lower() if field.description else "value"


def to_connec_value(value: Any) -> Any:
    """A local value as Connec! JSON (numbers as numbers, dates as ISO strings)."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return platform_time_text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value
