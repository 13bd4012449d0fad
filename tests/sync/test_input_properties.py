"""Property-based tests of the sync's input: the notification parser and every registered mapper.

Bounded for CI (``max_examples``, no deadline). Import: any JSON value in any
mapped field, reference or child list is mapped or parked (``MappingError``),
never another exception, and what is mapped can be stored. Export: any valid
local object gives standard JSON that imports back to the same values.
"""

from __future__ import annotations

import decimal
import json
import uuid

import pytest
from django.db import models
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import from_field

from maestrano_accounts.models import Company
from maestrano_integration import strict_input
from maestrano_sync.inbox import apply_records
from maestrano_sync.mappers import MappingError, ReferenceResolver, get_path, set_path
from maestrano_sync.notifications import NotificationRejected, parse_payload
from maestrano_sync.registry import registry

BOUNDED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ENTITIES = sorted(registry.entities())

#: Any JSON value Python's parser can produce, the ones no database stores included.
TEXT = st.text(max_size=20) | st.sampled_from(["\x00", "a\ud800", "2024-02-30", "x" * 300])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 12698, -1, 0]),
    st.floats(),  # NaN, infinities and overflowed numbers come out of json.loads as floats
    TEXT,
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat() + "T00:00:00Z"),
)
ANY_JSON = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(TEXT, SCALARS, max_size=2),
)
REFERENCE = (
    ANY_JSON
    | st.sampled_from(["known-1", "unknown"])
    | st.just([{"provider": "connec", "id": "known-1"}])
)


def paths_of(mapping) -> list[str]:
    return [*mapping.fields.values(), *(path for path, _ in mapping.references.values())]


@st.composite
def records(draw, mapper):
    """A Connec! record of ``mapper``'s entity with any JSON at any mapped path."""
    data: dict = {}
    for path in paths_of(mapper):
        if draw(st.booleans()):
            is_reference = path in {p for p, _ in mapper.references.values()}
            set_path(data, path, draw(REFERENCE if is_reference else ANY_JSON))
    for child in mapper.children:
        items = draw(
            st.lists(
                st.dictionaries(st.sampled_from(paths_of(child)), REFERENCE, max_size=4) | ANY_JSON,
                max_size=3,
            )
            | ANY_JSON
        )
        set_path(data, child.path, items)
    return data


def resolver_for(mapper) -> ReferenceResolver:
    entities = {entity for m in (mapper, *mapper.children) for _, entity in m.references.values()}
    return ReferenceResolver(local_pks={entity: {"known-1": 1} for entity in entities})


def assert_storable(mapping, instance) -> None:
    for local_name in mapping.fields:
        field = mapping.model._meta.get_field(local_name)
        value = getattr(instance, field.attname)
        if isinstance(value, str):
            assert strict_input.is_safe_text(value)
            assert field.max_length is None or len(value) <= field.max_length
        if isinstance(value, decimal.Decimal):
            assert value.is_finite()


@pytest.mark.parametrize("entity", ENTITIES)
def test_any_json_in_any_field_is_mapped_or_parked(entity):
    mapper = registry.for_entity(entity)
    company = Company(pk=1, preset="maestrano", group_uid="cld-1")

    @BOUNDED
    @given(records(mapper))
    def mapped_or_parked(data):
        instance = mapper.model(**{mapper.tenant_field: company})
        references = resolver_for(mapper)
        try:
            mapper.to_local(data, instance=instance, references=references)
            children = mapper.children_to_local(data, company=company, references=references)
        except MappingError as parked:
            assert str(parked)
            return
        assert_storable(mapper, instance)
        for child, objects in children.items():
            for obj in objects:
                assert_storable(child, obj)

    mapped_or_parked()


@pytest.mark.django_db
@pytest.mark.parametrize("entity", ENTITIES)
def test_applying_any_records_applies_or_parks_each_one(entity):
    """Through the database (its lengths, ranges and constraints): every record is counted."""
    mapper = registry.for_entity(entity)
    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")

    @settings(BOUNDED, max_examples=25)
    @given(st.lists(records(mapper), min_size=1, max_size=4))
    def applied_or_parked(datas):
        batch = [
            {
                **data,
                "id": str(uuid.uuid4()),
                "group_id": "cld-1",
                "updated_at": "2024-01-01T00:00:00Z",
            }
            for data in datas
        ]
        result = apply_records(company=company, entity=entity, records=batch)
        counted = result.created + result.updated + result.failed + result.skipped + result.ignored
        assert counted == len(batch)

    applied_or_parked()


def field_values(mapping):
    return st.fixed_dictionaries(
        {
            name: from_field(mapping.model._meta.get_field(name))
            for name in mapping.fields
            if not isinstance(mapping.model._meta.get_field(name), models.AutoField)
        }
    )


@pytest.mark.parametrize(
    "mapping",
    [m for mapper in registry.mappers() for m in (type(mapper), *mapper.children)],
    ids=lambda m: m.__name__,
)
def test_any_local_object_exports_standard_json_that_imports_back(mapping):
    @BOUNDED
    @given(field_values(mapping))
    def round_trip(values):
        assume(all(strict_input.is_safe_text(v) for v in values.values() if isinstance(v, str)))
        original = mapping.model(**values)

        exported = mapping.export_fields(original, ReferenceResolver())
        text = json.dumps(exported, allow_nan=False)
        imported = mapping.model()
        mapping.apply_fields(strict_input.loads(text), imported, ReferenceResolver())

        for name in mapping.fields:
            before, after = getattr(original, name), getattr(imported, name)
            if before is None and isinstance(after, str):
                before = ""  # an empty text column holds "", not NULL
            assert after == before, (name, exported)
            assert get_path(exported, mapping.fields[name], None) is not None or before in (
                None,
                "",
            )

    round_trip()


# --- the notification parser -----------------------------------------------------------------

RECORD = st.fixed_dictionaries(
    {"id": TEXT | st.integers() | st.floats(), "group_id": TEXT | st.none()},
    optional={"updated_at": ANY_JSON, "name": ANY_JSON},
)
PAYLOADS = (
    st.dictionaries(
        st.sampled_from([*ENTITIES, "spaceships"]) | TEXT,
        st.lists(RECORD | ANY_JSON, max_size=3) | ANY_JSON,
        max_size=3,
    )
    | ANY_JSON
)


@BOUNDED
@given(PAYLOADS)
def test_any_notification_body_is_refused_with_a_400_or_each_record_kept_or_refused(payload):
    body = json.dumps(payload).encode()  # NaN and Infinity written as such, surrogates escaped

    try:
        parsed = parse_payload(body)
    except NotificationRejected as refused:
        assert refused.status == 400
        assert str(refused)
        return

    def text(records_):
        return sorted(json.dumps(record, sort_keys=True) for record in records_)

    assert set(parsed.records) == set(payload)
    for entity, records_ in payload.items():
        refused = [bad.record for bad in parsed.refused if bad.entity == entity]
        kept = [record.data for record in parsed.records[entity]]
        assert text(kept + refused) == text(records_)  # nothing lost
    for records_ in parsed.records.values():
        for record in records_:
            strict_input.check_value(record.data)
            assert strict_input.is_safe_text(record.data["id"] + record.data["group_id"])
            assert record.connec_id == record.data["id"]  # the one rule, read once
    for bad in parsed.refused:
        assert bad.reason
        assert strict_input.is_safe_text(bad.group_id + bad.connec_id)


@BOUNDED
@given(st.binary(max_size=300))
def test_any_bytes_are_a_notification_or_a_400(body):
    try:
        parse_payload(body)
    except NotificationRejected as refused:
        assert refused.status == 400
