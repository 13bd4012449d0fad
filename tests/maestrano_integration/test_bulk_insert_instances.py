"""``maestrano_integration.bulk_insert.insert_instances`` writes the rows ``bulk_create``
writes: the same values read back
(``auto_now`` stamps set, decimals rounded by the column, texts as they are, foreign keys
copied from the related objects), primary keys and states set; a value it does not write
itself (an expression) goes to ``bulk_create``, and a value the database refuses fails the
statement as with ``bulk_create``."""

from __future__ import annotations

import datetime
import decimal
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_accounts.models import Company
from maestrano_integration import bulk_insert

pytestmark = pytest.mark.django_db

_STAMPS = {"id", "created_at", "updated_at"}


def _company() -> Company:
    return Company.objects.create(preset="maestrano", group_uid="cld-rows", name="Rows")


def _build(
    company: Company, org, invoice, item, first_line: int
) -> dict[type[models.Model], list[models.Model]]:
    """Unsaved rows of every crm model, with odd but valid values."""
    return {
        Organization: [
            Organization(company=company, name="Ünïcode ✓ 'quoted' \"double\" \\ %s ?"),
            Organization(company=company, name="x" * 255, is_supplier=True, email="a@b.co"),
            # Values of other types than the field's own (adapted, not written as they are).
            Organization(company=company, name=12, is_supplier=1),
            Organization(company=company, name=True, is_supplier=0),
        ],
        Person: [
            Person(company=company, first_name="Ann", organization=org),
            Person(company=company, last_name="Null org", organization=None),
        ],
        Item: [
            Item(company=company, name="Priced", sale_price=decimal.Decimal("12.345")),
            Item(company=company, name="From text", purchase_price="7.5", description="\n\t"),
        ],
        Invoice: [
            Invoice(
                company=company,
                organization=org,
                number="INV-1",
                transaction_date=datetime.date(2026, 2, 28),
                total=decimal.Decimal("-0.01"),
            ),
        ],
        InvoiceLine: [
            InvoiceLine(company=company, invoice=invoice, line_number=first_line, item=item),
            InvoiceLine(company=company, invoice=invoice, line_number=first_line + 1, quantity=3),
        ],
    }


def _values(model: type[models.Model], pks: list) -> list[dict]:
    rows = model.objects.filter(pk__in=pks).order_by("pk").values()
    return [{k: v for k, v in row.items() if k not in _STAMPS} for row in rows]


@pytest.mark.usefixtures("sqlite_statement_form")
def test_the_same_rows_as_bulk_create():
    company = _company()
    org = Organization.objects.create(company=company, name="Parent")
    invoice = Invoice.objects.create(company=company, organization=org)
    item = Item.objects.create(company=company, name="Existing")
    ours, theirs = (_build(company, org, invoice, item, n) for n in (1, 3))
    before = timezone.now()
    for model, objs in ours.items():
        bulk_insert.insert_instances(model, objs)
        model.objects.bulk_create(theirs[model])
        for obj in objs:
            assert obj.pk is not None
            assert not obj._state.adding
            assert obj._state.db == "default"
        ours_values = _values(model, [o.pk for o in objs])
        theirs_values = _values(model, [o.pk for o in theirs[model]])
        if model is InvoiceLine:  # numbered after ours (one number per line of an invoice)
            for row in theirs_values:
                row["line_number"] -= 2
        assert ours_values == theirs_values
        if hasattr(model, "created_at"):
            stored = model.objects.filter(pk__in=[o.pk for o in objs])
            assert all(row.created_at >= before for row in stored)
            assert all(row.updated_at >= before for row in stored)


@pytest.mark.usefixtures("sqlite_statement_form")
def test_more_rows_than_one_statement_takes():
    company = _company()
    objs = [Organization(company=company, name=f"Org {n}") for n in range(2500)]
    bulk_insert.insert_instances(Organization, objs)
    names = dict(Organization.objects.filter(company=company).values_list("pk", "name"))
    assert [names[obj.pk] for obj in objs] == [f"Org {n}" for n in range(2500)]


def test_one_time_stamps_the_rows_of_one_insert():
    """``auto_now``/``auto_now_add``: one time per field for the rows of one call, set on
    every instance (as ``pre_save`` sets it) and the one stored."""
    company = _company()
    before = timezone.now()
    objs = [Organization(company=company, name=f"Org {n}") for n in range(50)]
    bulk_insert.insert_instances(Organization, objs)
    assert len({obj.created_at for obj in objs}) == 1
    assert len({obj.updated_at for obj in objs}) == 1
    assert objs[0].created_at >= before
    stored = Organization.objects.filter(pk__in=[o.pk for o in objs])
    assert {(row.created_at, row.updated_at) for row in stored} == {
        (objs[0].created_at, objs[0].updated_at)
    }
    later = [Organization(company=company, name="Later")]
    bulk_insert.insert_instances(Organization, later)
    assert later[0].created_at >= objs[0].created_at


def test_expressions_go_to_bulk_create():
    company = _company()
    obj = Organization(company=company, name="lower")
    obj.city = Upper(models.Value("sydney"))
    bulk_insert.insert_instances(Organization, [obj])
    assert Organization.objects.get(pk=obj.pk).city == "SYDNEY"


def test_a_refused_row_fails_the_statement():
    company = _company()
    invoice = Invoice.objects.create(company=company)
    objs = [
        InvoiceLine(company=company, invoice=invoice, line_number=1),
        InvoiceLine(company=company, invoice=invoice, line_number=-1),  # CHECK (>= 0)
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert.insert_instances(InvoiceLine, objs)
    assert not InvoiceLine.objects.filter(invoice=invoice).exists()


@pytest.mark.parametrize(
    ("model", "name", "values"),
    [
        (Organization, "created_at", [timezone.now(), None]),
        (
            Organization,
            "updated_at",
            [
                datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.UTC),
                datetime.datetime(
                    2026,
                    3,
                    29,
                    1,
                    30,
                    0,
                    5,
                    tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
                ),
                timezone.now().astimezone(zoneinfo.ZoneInfo("Australia/Sydney")),
            ],
        ),
        (Organization, "name", ["text", "", None]),
        (Organization, "is_supplier", [True, False, 1, None]),
        (InvoiceLine, "line_number", [1, True, "7", None]),
        (
            InvoiceLine,
            "quantity",
            [decimal.Decimal("1.23456"), "2.5", 3, None, 2.5, decimal.Decimal("-0E-7")],
        ),
        (InvoiceLine, "invoice", [1, "2", None]),
        (Invoice, "transaction_date", [datetime.date(2026, 2, 28), None]),
    ],
)
def test_values_adapted_as_the_field_does(model, name, values):
    field = model._meta.get_field(name)
    adapt = bulk_insert.db_adapter(field, connection)
    assert [adapt(value) for value in values] == [
        field.get_db_prep_save(value, connection) for value in values
    ]


@pytest.mark.parametrize("value", [decimal.Decimal("NaN"), decimal.Decimal("-Infinity"), "x"])
def test_a_value_the_field_refuses_is_refused_as_the_field_does(value):
    field = InvoiceLine._meta.get_field("quantity")
    adapt = bulk_insert.db_adapter(field, connection)
    with pytest.raises(ValidationError) as ours:
        adapt(value)
    with pytest.raises(ValidationError) as theirs:
        field.get_db_prep_save(value, connection)
    assert ours.value.messages == theirs.value.messages


def _stored(model: type[models.Model], pks: list) -> list[tuple]:
    """The rows as the database driver returns them (no field converters): a number stored
    as text, or a decimal as a float, shows here where the ORM's values would hide it."""
    opts = model._meta
    columns = [f.column for f in opts.concrete_fields if f.name not in _STAMPS]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(map(quote, columns))} FROM {quote(opts.db_table)} "
            f"WHERE {quote(opts.pk.column)} IN ({', '.join(['%s'] * len(pks))}) "
            f"ORDER BY {quote(opts.pk.column)}",
            pks,
        )
        return cursor.fetchall()


@pytest.mark.usefixtures("sqlite_statement_form")
@pytest.mark.parametrize("model", [Organization, Person, Item, Invoice])
def test_the_database_holds_what_bulk_create_writes(model):
    """Stored values compared as the driver reads them: on SQLite our rows travel as one JSON
    document (``json_each``), and each value must land with the storage class (integer,
    real, text, NULL) and text that binding it, as ``bulk_create`` does, gives."""
    company = _company()
    org = Organization.objects.create(company=company, name="Parent")
    invoice = Invoice.objects.create(company=company, organization=org)
    item = Item.objects.create(company=company, name="Existing")
    ours, theirs = (_build(company, org, invoice, item, 1)[model] for _ in range(2))
    extra = {
        Organization: dict(name="0012", is_supplier=False),
        Person: dict(first_name="1e5", last_name="  "),
        Item: dict(name="Big", sale_price=decimal.Decimal("99999999.99"), purchase_price=0),
        Invoice: dict(number="007", total=decimal.Decimal("1E+2"), transaction_date=None),
    }[model]
    ours.append(model(company=company, **extra))
    theirs.append(model(company=company, **extra))
    bulk_insert.insert_instances(model, ours)
    model.objects.bulk_create(theirs)
    assert _stored(model, [o.pk for o in ours]) == _stored(model, [o.pk for o in theirs])


@pytest.mark.usefixtures("sqlite_statement_form")
def test_columns_of_one_shared_value_or_of_values_and_none_as_bulk_create_writes_them():
    """A column whose rows all hold the same decimal or date object (a default), one of
    decimals and ``None``, one of a date in some rows only: written as text once or value
    by value into the rows' document, each lands as ``bulk_create`` writes it."""
    company = _company()
    org = Organization.objects.create(company=company, name="Parent")
    shared_price = decimal.Decimal("0.10")
    shared_day = datetime.date(2026, 12, 31)

    def build() -> list[Invoice]:
        return [
            Invoice(
                company=company,
                organization=org,
                number=f"N{n}",
                total=shared_price if n % 2 else decimal.Decimal(n) / 7 if n % 3 else None,
                transaction_date=shared_day if n % 4 else None,
                due_date=shared_day,
            )
            for n in range(60)
        ]

    ours, theirs = build(), build()
    bulk_insert.insert_instances(Invoice, ours)
    Invoice.objects.bulk_create(theirs)
    assert _stored(Invoice, [o.pk for o in ours]) == _stored(Invoice, [o.pk for o in theirs])
    stored = {i.number: i for i in Invoice.objects.filter(pk__in=[o.pk for o in ours])}
    assert stored["N3"].total == decimal.Decimal("0.10")
    assert stored["N2"].total == round(decimal.Decimal(2) / 7, 2)
    assert stored["N0"].total is None and stored["N0"].transaction_date is None
    assert stored["N5"].due_date == shared_day


def test_many_rows_in_one_statement_on_sqlite_and_postgresql(sqlite_statement_form):
    """One ``INSERT`` for all the rows of a call (the rows in one JSON document), with the
    new keys given to the right instances; without SQLite's JSON functions, several (as
    many values per statement as SQLite takes parameters)."""
    company = _company()
    objs = [Organization(company=company, name=f"Org {n}") for n in range(1200)]
    with CaptureQueriesContext(connection) as queries:
        bulk_insert.insert_instances(Organization, objs)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    if sqlite_statement_form == "document":
        assert len(inserts) == 1
    else:
        assert len(inserts) > 1
    names = dict(Organization.objects.filter(company=company).values_list("pk", "name"))
    assert [names[obj.pk] for obj in objs] == [f"Org {n}" for n in range(1200)]


@pytest.mark.parametrize("insert", ["ours", "bulk_create"])
def test_related_objects_as_bulk_create_takes_them(insert):
    """An unsaved related object is refused; one saved after it was assigned gives its key;
    a key changed after the assignment wins over the cached object (its cache cleared);
    a related object saved before it was assigned gives its key."""
    company = _company()
    org = Organization.objects.create(company=company, name="Parent")
    write = (
        (lambda objs: bulk_insert.insert_instances(InvoiceLine, objs))
        if insert == "ours"
        else InvoiceLine.objects.bulk_create
    )

    unsaved = Invoice(company=company, organization=org)
    with pytest.raises(ValueError, match="unsaved related object 'invoice'"):
        write([InvoiceLine(company=company, invoice=unsaved, line_number=1)])

    saved_after = Invoice(company=company, organization=org)
    late = InvoiceLine(company=company, invoice=saved_after, line_number=1)
    saved_after.save()
    other = Invoice.objects.create(company=company, organization=org)
    moved = InvoiceLine(company=company, invoice=saved_after, line_number=2)
    moved.invoice_id = other.pk
    plain = InvoiceLine(company=company, invoice=other, line_number=3)
    write([late, moved, plain])

    stored = dict(
        InvoiceLine.objects.filter(pk__in=[late.pk, moved.pk, plain.pk]).values_list(
            "line_number", "invoice_id"
        )
    )
    assert stored == {1: saved_after.pk, 2: other.pk, 3: other.pk}
    assert late.invoice_id == saved_after.pk
    assert moved.invoice == other  # the stale cached invoice was dropped
