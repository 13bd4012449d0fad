"""The import's field converters (``maestrano_sync.values.converter_for``) do what ``field.clean``
does.

The converters take the field's decisions once (its kind, choices, validators) and check
the common validators without Django's machinery, calling ``field.clean`` whenever a
value may be refused. These properties compare them with the slow path they replace,
on the fields of every registered mapping and on fields of the kinds adopters map
(emails, choices, bounded numbers, dates): same value, or the same messages, so that a
bad record is parked with the same reason.
"""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestrano_integration.strict_input import InputRefused, check_value, text_problem
from maestrano_sync.registry import registry
from maestrano_sync.values import _excerpt, _field_kind, _python_value, converter_for

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _slow_to_local_value(field: models.Field, value, instance):
    """The conversion before converters: the checks, then ``field.clean`` every time."""
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
        elif isinstance(value, float):
            check_value(value)
    except InputRefused as error:
        raise ValidationError(str(error)) from None
    try:
        return field.clean(_python_value(field, value), instance)
    except (TypeError, ValueError, ArithmeticError):
        raise ValidationError(f"not a valid {_field_kind(field)}: {_excerpt(value)}") from None


def _outcome(function, *args):
    try:
        value = function(*args)
    except ValidationError as error:
        return ("refused", error.messages)
    return ("value", type(value), repr(value))  # repr: NaN equals NaN


class _Choice(models.TextChoices):
    ONE = "ONE", "One"
    TWO = "TWO", "Two"


class _ZeroIsEmpty(models.IntegerField):
    """A field with empty values of its own (0 among them): a number may be empty."""

    empty_values = [*validators.EMPTY_VALUES, 0]


def _extra_fields() -> list[models.Field]:
    """Fields of the kinds adopters map, beyond the demo models' ones."""
    fields = [
        models.EmailField(),
        models.EmailField(blank=True, max_length=30),
        models.CharField(max_length=5, choices=_Choice.choices),
        models.CharField(
            max_length=10, choices=[("Group", [("a", "A"), ("b", "B")]), ("c", "C")], blank=True
        ),
        models.CharField(max_length=8, validators=[validators.MinLengthValidator(2)]),
        models.CharField(max_length=8, validators=[validators.RegexValidator(r"^[a-z]*$")]),
        models.CharField(max_length=5, choices=lambda: [("ONE", "One")], blank=True),
        models.IntegerField(validators=[validators.MaxValueValidator(100)]),
        models.IntegerField(choices=[(1, "one"), (2, "two")], null=True),
        models.PositiveIntegerField(),
        models.PositiveSmallIntegerField(null=True, blank=True),
        models.BigIntegerField(),
        models.FloatField(null=True),
        models.DecimalField(max_digits=5, decimal_places=2),
        models.DecimalField(max_digits=14, decimal_places=4, default=1),
        models.BooleanField(default=False),
        models.BooleanField(null=True),
        models.DateField(),
        models.DateTimeField(null=True),
        models.TimeField(null=True),
        models.URLField(blank=True),
        models.SlugField(),
        models.UUIDField(null=True),
        models.JSONField(null=True),
        models.GenericIPAddressField(null=True),
        _ZeroIsEmpty(),
        _ZeroIsEmpty(null=True, blank=True),
    ]
    for number, field in enumerate(fields):
        field.set_attributes_from_name(f"extra_{number}")
    return fields


def _mapped_fields() -> list[models.Field]:
    fields = []
    for entity in sorted(registry.entities()):
        mapper = registry.for_entity(entity)
        for mapping in (mapper, *mapper.children):
            fields.extend(mapping.model._meta.get_field(name) for name in mapping.fields)
    return fields


FIELDS = _mapped_fields() + _extra_fields()

TEXT = st.text(max_size=12) | st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\ud800",
        "x" * 300,
        "ONE",
        "one",
        "a",
        "c",
        "Group",
        "12",
        "-1",
        "1e3",
        "12.345",
        "99999.99",
        "NaN",
        "Infinity",
        "2024-02-30",
        "2024-02-29",
        "2016-10-04T00:00:00Z",
        "2016-10-04T25:00:00Z",
        "12:30",
        "true",
        "http://example.com",
        "not a url",
        "10.0.0.1",
        "::1",
        "a-slug",
        "12345678-1234-5678-1234-567812345678",
    ]
)
EMAILS = st.sampled_from(
    [
        "a@example.com",
        "first.last@example.com",
        "a@localhost",
        "a@[10.0.0.1]",
        "a@[::1]",
        "a@[999.0.0.1]",
        "@example.com",
        "a@",
        "a@b",
        "a@-example.com",
        "a..b@example.com",
        '"quoted name"@example.com',
        "ünïcode@exämple.com",
        "a@example.com.",
        "a" * 64 + "@" + "b" * 250 + ".com",
        "a@" + "b" * 64 + ".com",
        "x" * 20 + "@example.com",
        "A@EXAMPLE.COM",
    ]
) | st.builds(lambda user, domain: f"{user}@{domain}", st.text(max_size=6), st.text(max_size=8))
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 32767, 32768, 100, 101, 0, -1, 1, 2]),
    st.floats(),
    st.decimals(allow_nan=False, allow_infinity=False).map(float),
    TEXT,
    EMAILS,
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat() + "T00:00:00Z"),
    st.lists(st.integers() | TEXT, max_size=2),
    st.dictionaries(TEXT, st.integers() | TEXT, max_size=2),
)


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{type(f).__name__}:{f.name}")
def test_converter_does_what_field_clean_does(field):
    instance = None  # Field.clean does not use it; the model fields' own clean would

    @BOUNDED
    @given(VALUES)
    def same_outcome(value):
        assert _outcome(converter_for(field), value, instance) == _outcome(
            _slow_to_local_value, field, value, instance
        )

    same_outcome()


def test_a_refused_value_gets_django_messages():
    email, choice, bounded = (
        _extra_fields()[0],
        _extra_fields()[2],
        _extra_fields()[7],
    )
    with pytest.raises(ValidationError) as refused:
        converter_for(email)("not-an-email", None)
    assert refused.value.messages == ["Enter a valid email address."]
    with pytest.raises(ValidationError) as refused:
        converter_for(choice)("THREE", None)
    assert refused.value.messages == ["Value 'THREE' is not a valid choice."]
    with pytest.raises(ValidationError) as refused:
        converter_for(bounded)(101, None)
    assert refused.value.messages == ["Ensure this value is less than or equal to 100."]


def test_accepted_values_keep_their_type():
    fields = _extra_fields()
    assert converter_for(fields[13])(1.5, None) == decimal.Decimal("1.5")
    assert converter_for(fields[17])("2016-10-04T00:00:00Z", None) == datetime.date(2016, 10, 4)
    assert converter_for(fields[15])(True, None) is True
