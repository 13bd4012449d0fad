"""``Mapper.apply_fields`` (a function made once per mapping class, ``maestrano_sync.field_apply``)
sets the same values and refuses with the same messages as the per-field loop it
replaced: the path read, ``to_local_value`` and ``setattr`` for every declared field, then
the references through the resolver. Compared with hypothesis on every registered
mapping (records and invoice lines), refused values included, and on records that
are not plain dicts.
"""

from __future__ import annotations

import types

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from crm.models import Organization
from maestrano_sync.mappers import (
    Mapper,
    MappingError,
    ReferenceResolver,
    connec_id_of,
    get_path,
    set_path,
)
from maestrano_sync.registry import registry
from maestrano_sync.values import to_local_value
from tests.sync.test_converters import BOUNDED, VALUES

_ABSENT = object()


def _mappings():
    result = []
    for entity in sorted(registry.entities()):
        mapper = registry.for_entity(entity)
        result.extend([mapper, *mapper.children])
    return result


MAPPINGS = _mappings()


def _name(mapping) -> str:
    """Mappers are registered as instances, child mappings are classes."""
    return mapping.__name__ if isinstance(mapping, type) else type(mapping).__name__


KNOWN = "known-1"
REFERENCE_VALUES = st.sampled_from(
    [
        None,
        "",
        KNOWN,
        "unknown",
        12,
        True,
        1.5,
        "\x00",
        ["not", "ids"],
        [{"provider": "connec", "id": KNOWN}],
        [{"provider": "connec", "id": "unknown"}],
        {"id": KNOWN},
    ]
)


def _resolver(mapping) -> ReferenceResolver:
    return ReferenceResolver(
        local_pks={entity: {KNOWN: 41} for _, entity in mapping.references.values()}
    )


def _value_for_an_object(data, path) -> str | None:
    """The problem of a path on whose way a value (not null) stands for an object."""
    current = data
    parts = path.split(".")
    for depth, part in enumerate(parts[:-1], start=1):
        current = current.get(part) if hasattr(current, "get") else None
        if current is not None and not hasattr(current, "keys"):
            return f"{path}: {'.'.join(parts[:depth])} is not an object"
    return None


def _loop_apply(mapping, data, instance, references) -> None:
    """The declarations applied one by one, as before the generated function, and a value
    standing for an object on a path's way refused with the path's name."""
    opts = mapping.model._meta
    problems = []
    for name, path in mapping.fields.items():
        if problem := _value_for_an_object(data, path):
            problems.append(problem)
            continue
        value = get_path(data, path, _ABSENT)
        if value is _ABSENT:
            continue
        field = opts.get_field(name)
        try:
            setattr(instance, field.attname, to_local_value(field, value, instance))
        except ValidationError as error:
            problems.append(f"{path}: {'; '.join(error.messages)}")
    for name, (connec_field, entity) in mapping.references.items():
        if problem := _value_for_an_object(data, connec_field):
            problems.append(problem)
            continue
        raw = get_path(data, connec_field, _ABSENT)
        if raw is _ABSENT:
            continue
        field = opts.get_field(name)
        try:
            connec_id = connec_id_of(raw)
            if connec_id is None:
                if not field.null:
                    problems.append(f"{connec_field}: required")
                    continue
                setattr(instance, field.attname, None)
            else:
                setattr(instance, field.attname, references.local_pk(entity, connec_id))
        except MappingError as error:
            problems.append(f"{connec_field}: {error}")
    if problems:
        raise MappingError("; ".join(problems))


def _outcome(apply, mapping, data):
    instance = mapping.model()
    try:
        apply(mapping, data, instance, _resolver(mapping))
    except MappingError as error:
        return ("refused", str(error))
    names = [mapping.model._meta.get_field(name).attname for name in mapping.local_field_names()]
    return ("applied", {name: (type(v), v) for name in names for v in [getattr(instance, name)]})


def _generated(mapping, data, instance, references):
    mapping.apply_fields(data, instance, references)


@st.composite
def records(draw, mapping):
    """A record with any JSON value (or none) at each declared path, texts as long as the
    fields' limits and one more among them; sometimes an object on the way replaced by
    a non-object (``"address": "x"``)."""
    data: dict = {}
    opts = mapping.model._meta
    limits = sorted({opts.get_field(name).max_length or 1 for name in mapping.fields})
    at_limits = st.sampled_from(["é" * (limit + d) for limit in limits for d in (0, 1)])
    for path in mapping.fields.values():
        if draw(st.booleans()):
            set_path(data, path, draw(VALUES | at_limits))
    for connec_field, _ in mapping.references.values():
        if draw(st.booleans()):
            set_path(data, connec_field, draw(REFERENCE_VALUES))
    nested = sorted({path.split(".")[0] for path in mapping.fields.values() if "." in path})
    if nested and draw(st.booleans()):
        data[draw(st.sampled_from(nested))] = draw(VALUES)
    return data


@pytest.mark.django_db
@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda m: _name(m))
def test_generated_apply_does_what_the_loop_did(mapping):
    @BOUNDED
    @given(records(mapping), st.booleans())
    def same_outcome(data, as_mapping_proxy):
        if as_mapping_proxy:  # a Mapping that is not a dict: read through the Mapping protocol
            data = types.MappingProxyType(data)
        assert _outcome(_generated, mapping, data) == _outcome(_loop_apply, mapping, data)

    same_outcome()


def test_every_refused_value_is_named_with_django_message():
    mapper = registry.for_entity("people")
    data = {
        "first_name": "x" * 500,
        "email": {"address": "not an email"},
        "title": "\x00",
        "organization_id": "unknown",
    }
    with pytest.raises(MappingError) as refused:
        mapper.apply_fields(data, mapper.model(), _resolver(mapper))
    max_length = mapper.model._meta.get_field("first_name").max_length
    assert str(refused.value) == (
        "title: contains a NUL character (\\u0000); "
        f"first_name: Ensure this value has at most {max_length} characters (it has 500).; "
        "email.address: Enter a valid email address.; "
        "organization_id: unknown organizations reference 'unknown'"
    )


def test_a_value_where_an_object_is_expected_is_refused_by_name():
    mapper = registry.for_entity("people")
    instance = mapper.model(first_name="Kept")

    with pytest.raises(MappingError) as refused:
        mapper.apply_fields(
            {"first_name": "Ann", "email": "ann@example.com"}, instance, _resolver(mapper)
        )

    assert str(refused.value) == "email.address: email is not an object"
    # Absent and null objects on the way are no problem: the field is left as it is.
    for record in ({"first_name": "Ann"}, {"first_name": "Ann", "email": None}):
        mapper.apply_fields(record, instance, _resolver(mapper))
        assert instance.first_name == "Ann"


def test_changed_declarations_make_a_new_function():
    class Narrow(Mapper):
        model = Organization
        entity = "test-narrow"
        fields = {"name": "name"}

    instance = Organization()
    Narrow.apply_fields({"name": "A", "city": "B"}, instance, ReferenceResolver())
    assert (instance.name, instance.city) == ("A", "")
    Narrow.fields = {"name": "name", "city": "town"}
    Narrow.apply_fields({"name": "A", "town": "B"}, instance, ReferenceResolver())
    assert (instance.name, instance.city) == ("A", "B")


def test_declarations_never_enter_the_generated_source():
    """A path or field name that is not an identifier (quotes, newlines) is data only."""

    class Odd(Mapper):
        model = Organization
        entity = "test-odd"
        fields = {"name": "x'); raise SystemExit('\n.b", "city": 'a"b.c\\d'}

    instance = Organization()
    Odd.apply_fields(
        {"x'); raise SystemExit('\n": {"b": "Name"}, 'a"b': {"c\\d": "Town"}},
        instance,
        ReferenceResolver(),
    )
    assert (instance.name, instance.city) == ("Name", "Town")


def test_a_field_with_its_own_descriptor_is_set_through_it(monkeypatch):
    """An attribute that is a data descriptor (here a property) gets ``setattr``, not
    the instance dictionary."""
    seen = []

    def set_city(self, value):
        seen.append(value)
        self.__dict__["city"] = value

    monkeypatch.setattr(
        Organization, "city", property(lambda self: self.__dict__.get("city"), set_city)
    )

    class Tracked(Mapper):
        model = Organization
        entity = "test-tracked"
        fields = {"name": "name", "city": "city"}

    instance = Organization()
    seen.clear()
    Tracked.apply_fields({"name": "A", "city": "Town"}, instance, ReferenceResolver())
    assert seen == ["Town"]
    assert (instance.name, instance.city) == ("A", "Town")
