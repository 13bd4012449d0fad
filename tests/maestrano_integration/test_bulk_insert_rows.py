"""``maestrano_integration.bulk_insert.insert_rows`` writes the rows ``create()`` writes: the
given columns, the shared values (by name or attribute name) and, for every other field,
its default (``auto_now``/``auto_now_add``: the time of the call), whatever earlier calls
of the same shape were given; the new primary keys in the rows' order."""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_integration import bulk_insert

pytestmark = pytest.mark.django_db

_STAMPS = {"id", "created_at", "updated_at"}


def _values(pks: list) -> list[dict]:
    rows = Organization.objects.filter(pk__in=pks).order_by("pk").values()
    return [{k: v for k, v in row.items() if k not in _STAMPS} for row in rows]


@pytest.mark.usefixtures("sqlite_statement_form")
def test_given_shared_and_default_values_as_create_writes_them():
    company = Company.objects.create(preset="maestrano", group_uid="cld-rows", name="Rows")
    before = timezone.now()

    shared = bulk_insert.insert_rows(
        Organization,
        fields=("company_id", "name"),
        rows=[(company.pk, "A"), (company.pk, "B")],
        shared={"city": "Sydney", "is_supplier": True},
        returning=True,
    )
    # The same shape again: the defaults, not the previous call's shared values.
    defaults = bulk_insert.insert_rows(
        Organization, fields=("company_id", "name"), rows=[(company.pk, "C")], returning=True
    )
    # A foreign key shared by its attribute name.
    by_attname = bulk_insert.insert_rows(
        Organization,
        fields=("name",),
        rows=[("D",)],
        shared={"company_id": company.pk},
        returning=True,
    )

    expected = [
        Organization.objects.create(company=company, name="A", city="Sydney", is_supplier=True),
        Organization.objects.create(company=company, name="B", city="Sydney", is_supplier=True),
        Organization.objects.create(company=company, name="C"),
        Organization.objects.create(company=company, name="D"),
    ]
    ours = [*shared, *defaults, *by_attname]
    assert _values(ours) == _values([obj.pk for obj in expected])
    for row in Organization.objects.filter(pk__in=ours):
        assert row.created_at == row.updated_at >= before


_INSTANT = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.usefixtures("sqlite_statement_form")
@pytest.mark.parametrize(
    ("values", "texts"),
    [
        # Equal (and hashing alike) but of other types: "1", "True", "1.0".
        ([1, True, 1.0, "1", 0, False], ["1", "True", "1.0", "1", "0", "False"]),
        # Equal and of one type, with different text.
        (
            [
                decimal.Decimal("1.0"),
                decimal.Decimal("1"),
                decimal.Decimal("1.00"),
                0.0,
                -0.0,
                _INSTANT,
                _INSTANT.astimezone(datetime.timezone(datetime.timedelta(hours=1))),
            ],
            [
                "1.0",
                "1",
                "1.00",
                "0.0",
                "-0.0",
                "2026-12-06 12:00:00+00:00",
                "2026-12-06 13:00:00+01:00",
            ],
        ),
    ],
    ids=["other-types", "other-texts"],
)
def test_equal_values_are_each_adapted_as_create_adapts_them(values, texts):
    """A value adapted once for the rows sharing it is never handed to a row holding an
    equal value a text field writes otherwise."""
    company = Company.objects.create(preset="maestrano", group_uid="cld-rows", name="Rows")
    ours = bulk_insert.insert_rows(
        Organization,
        fields=("name", "city"),
        rows=[(value, value) for value in values],
        shared={"company_id": company.pk},
        returning=True,
    )
    expected = [
        Organization.objects.create(company=company, name=value, city=value) for value in values
    ]
    assert _values(ours) == _values([obj.pk for obj in expected])
    assert [row["name"] for row in _values(ours)] == texts


def test_nothing_to_insert_is_no_statement():
    assert bulk_insert.insert_rows(Organization, fields=("name",), rows=[], returning=True) == []


def test_rows_without_fields_are_refused():
    with pytest.raises(ValueError, match="at least one field"):
        bulk_insert.insert_rows(Organization, fields=(), rows=[(), ()])
    assert not Organization.objects.exists()


def _inbox_row(company_id: int) -> tuple:
    return ("maestrano", company_id, {"people": [{"id": "p-1"}]}, 1)


def _linked(company_id: int, child_rows: list[tuple]) -> int:
    from maestrano_sync.models import InboxEntry, InboxRecord

    return bulk_insert.insert_row_with_children(
        InboxEntry,
        fields=("preset", "company_id", "payload", "record_count"),
        row=_inbox_row(company_id),
        children=InboxRecord,
        link="entry_id",
        child_fields=("company_id", "entity", "connec_id", "updated_at"),
        child_rows=child_rows,
    )


@pytest.mark.usefixtures("sqlite_statement_form")
def test_a_row_and_its_children_in_one_call():
    from maestrano_sync.models import InboxEntry, InboxRecord

    company = Company.objects.create(preset="maestrano", group_uid="cld-kids", name="Kids")
    when = timezone.now().replace(microsecond=0)
    with CaptureQueriesContext(connection) as queries:
        pk = _linked(
            company.pk, [(company.pk, "people", "p-1", when), (company.pk, "x", "x-2", None)]
        )
    childless = _linked(company.pk, [])

    entry = InboxEntry.objects.get(pk=pk)
    assert (entry.preset, entry.company, entry.payload, entry.record_count) == (
        "maestrano",
        company,
        {"people": [{"id": "p-1"}]},
        1,
    )
    assert entry.status == InboxEntry.Status.PENDING  # the field's default
    assert list(
        InboxRecord.objects.values_list("entry_id", "entity", "connec_id", "updated_at")
    ) == [
        (pk, "people", "p-1", when),
        (pk, "x", "x-2", None),
    ]
    assert InboxEntry.objects.filter(pk=childless).exists()
    assert not InboxRecord.objects.filter(entry_id=childless).exists()
    # PostgreSQL: one statement (the parent's INSERT in a WITH); elsewhere one per table.
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)


@pytest.mark.django_db(transaction=True)
def test_a_row_and_its_children_all_or_nothing_in_autocommit():
    """A child the database refuses (its company does not exist) leaves no parent behind,
    without a transaction of the caller's."""
    from maestrano_sync.models import InboxEntry, InboxRecord

    company = Company.objects.create(preset="maestrano", group_uid="cld-none", name="None")
    assert connection.get_autocommit()
    with pytest.raises(IntegrityError):
        _linked(company.pk, [(company.pk + 1000, "people", "p-1", None)])
    assert not InboxEntry.objects.exists()
    assert not InboxRecord.objects.exists()
    # The connection is usable afterwards (not left in a failed transaction).
    assert _linked(company.pk, [(company.pk, "people", "p-1", None)])
    assert InboxRecord.objects.count() == 1


def test_children_without_fields_are_refused():
    with pytest.raises(ValueError, match="names of the fields"):
        bulk_insert.insert_row_with_children(
            Organization,
            fields=("name",),
            row=("A",),
            children=Organization,
            link="company_id",
            child_fields=(),
            child_rows=[],
        )


def test_a_link_that_is_no_foreign_key_to_the_parent_is_refused():
    """The new row's key is written into ``link``: a foreign key to another model (here the
    index rows' company) would put it where it names another row, of another table."""
    from maestrano_sync.models import InboxEntry, InboxRecord

    company = Company.objects.create(preset="maestrano", group_uid="cld-link", name="Link")
    with pytest.raises(ValueError, match=r"not a foreign key to maestrano_sync\.InboxEntry"):
        bulk_insert.insert_row_with_children(
            InboxEntry,
            fields=("preset", "company_id", "payload", "record_count"),
            row=_inbox_row(company.pk),
            children=InboxRecord,
            link="company_id",
            child_fields=("entry_id", "entity", "connec_id", "updated_at"),
            child_rows=[],
        )
    assert not InboxEntry.objects.exists()


# --- conflicting rows updated (an upsert) ---------------------------------------------------


def _upsert(rows: list[tuple], **options) -> list:
    from maestrano_sync.models import SyncState

    return bulk_insert.insert_rows(
        SyncState,
        fields=("company_id", "entity", "last_notification_at"),
        rows=rows,
        **{
            "update_conflicts": True,
            "update_fields": ("last_notification_at",),
            "unique_fields": ("company", "entity"),
            **options,
        },
    )


@pytest.mark.usefixtures("sqlite_statement_form")
def test_an_upsert_updates_only_the_named_fields_of_the_rows_there_and_inserts_the_others():
    from maestrano_sync.models import SyncState

    company = Company.objects.create(preset="maestrano", group_uid="cld-upsert", name="Upsert")
    before = timezone.now().replace(microsecond=0)
    later = before + datetime.timedelta(minutes=5)
    SyncState.objects.create(
        company=company, entity="people", last_notification_at=before, last_push_at=before
    )

    with CaptureQueriesContext(connection) as queries:
        assert _upsert([(company.pk, "people", later), (company.pk, "items", later)]) == []

    assert len(queries) == 1
    assert {
        state.entity: (state.last_notification_at, state.last_push_at, state.last_reconcile_at)
        for state in SyncState.objects.all()
    } == {"people": (later, before, None), "items": (later, None, None)}
    # The shape's statement is built once: a second call updates both rows.
    _upsert([(company.pk, "people", before), (company.pk, "items", before)])
    assert set(SyncState.objects.values_list("last_notification_at", flat=True)) == {before}
    assert SyncState.objects.get(entity="people").last_push_at == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"returning": True}, "returning the keys"),
        ({"ignore_conflicts": True}, "either skipped or updated"),
        ({"update_fields": ()}, "needs the update_fields and the unique_fields"),
        ({"unique_fields": ()}, "needs the update_fields and the unique_fields"),
        ({"update_conflicts": False}, "are for update_conflicts"),
        ({"update_fields": ("id",)}, "cannot update a primary key"),
    ],
)
def test_an_upsert_with_contradictory_options_is_refused(options, message):
    from maestrano_sync.models import SyncState

    company = Company.objects.create(preset="maestrano", group_uid="cld-bad", name="Bad")
    with pytest.raises(ValueError, match=message):
        _upsert([(company.pk, "people", timezone.now())], **options)
    assert not SyncState.objects.exists()


def test_an_upsert_of_an_unknown_field_is_refused():
    from django.core.exceptions import FieldDoesNotExist

    from maestrano_sync.models import SyncState

    company = Company.objects.create(preset="maestrano", group_uid="cld-none2", name="None")
    with pytest.raises(FieldDoesNotExist):
        _upsert([(company.pk, "people", timezone.now())], update_fields=("nope",))
    assert not SyncState.objects.exists()
