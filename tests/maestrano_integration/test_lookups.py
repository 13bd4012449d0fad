"""``maestrano_integration.lookups``: ``among(column, values)`` finds what Django's
``column__in=values`` finds, for any text and for keys, in one statement however many
values there are; and on PostgreSQL its values are never a parameter, so a statement the
driver prepares never gets a generic plan that compares every row with every value."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Invoice, Item, Organization, Person
from maestrano_accounts.models import Company
from maestrano_integration.lookups import among, in_bulk
from maestrano_integration.transaction_settings import prepares_statements
from maestrano_sandbox.models import ConnecRecord, Group

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

ODD = ["a%b", "%s", "%%", "it's", 'q"uote', "{brace}", "com,ma", "NULL", "ünï-😀", " ", "x\\y", ""]
# What an array's text must escape or keep (PostgreSQL reads the values as one array):
# a backslash last, a quote after a backslash, spaces around, control characters.
ODD += ["x\\", '\\"', '"\\', " lead", "trail ", "tab\tnew\nline", '""', "{}", "a,b}"]


@pytest.fixture
def people():
    company = Company.objects.create(preset="maestrano", group_uid="cld-among", name="Among")
    other = Company.objects.create(preset="maestrano", group_uid="cld-other", name="Other")
    rows = [Person(company=company, last_name=name) for name in ODD]
    rows += [Person(company=other, last_name=name) for name in ODD[:3]]
    return company, Person.objects.bulk_create(rows)


def test_odd_text_is_found_as_it_is(people):
    company, _ = people
    for name in ODD:
        ours = Person.objects.filter(among("last_name", [name, "absent"]), company=company)
        assert [p.last_name for p in ours] == [name]
    everyone = Person.objects.filter(among("last_name", ODD), company=company)
    assert sorted(p.last_name for p in everyone) == sorted(ODD)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    wanted=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
    )
)
def test_the_same_rows_as_djangos_in(people, wanted):
    company, _ = people
    ours = Person.objects.filter(among("last_name", [*wanted, *ODD[::2]]), company=company)
    django = Person.objects.filter(last_name__in=[*wanted, *ODD[::2]], company=company)
    assert sorted(p.pk for p in ours) == sorted(p.pk for p in django)


def test_keys_in_bulk_as_in_bulk_in_one_statement(people):
    company, rows = people
    keys = [row.pk for row in rows] + list(range(10**6, 10**6 + 40_000))
    with CaptureQueriesContext(connection) as captured:
        found = in_bulk(Person.objects.filter(company=company), keys)
    assert len(captured.captured_queries) == 1
    assert found == Person.objects.filter(company=company).in_bulk([row.pk for row in rows])
    assert in_bulk(Person.objects.all(), []) == {}
    # Updates and deletes take it too.
    first = rows[0].pk
    assert Person.objects.filter(among("pk", [first, first, 10**7])).update(job_title="CEO") == 1
    assert Person.objects.get(pk=first).job_title == "CEO"
    assert Organization.objects.filter(among("pk", [10**7])).delete()[0] == 0


def test_other_kinds_of_values_are_prepared_by_their_field():
    group = Group.objects.create(uid="cld-uuids", name="Uuids")
    uids = [uuid.uuid4() for _ in range(3)]
    now = timezone.now()
    ConnecRecord.objects.bulk_create(
        ConnecRecord(group=group, entity="people", uid=uid, created_at=now, updated_at=now)
        for uid in uids
    )
    found = ConnecRecord.objects.filter(among("uid", [uids[0], uids[2], uuid.uuid4()]))
    assert {record.uid for record in found} == {uids[0], uids[2]}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
@pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])
def test_no_prepared_statement_takes_the_values(people):
    """(Transactional: the connection is reopened to prepare statements.)"""
    company, rows = people
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = dict(options)
    connection.close()
    options.update(server_side_binding=True, prepare_threshold=1)
    try:
        assert prepares_statements(connection)
        for n in range(8):  # the same text would be prepared after its first use
            keys = [rows[n].pk, rows[n + 1].pk, 10**6 + n]
            assert set(in_bulk(Person.objects.filter(company=company), keys)) == set(keys[:2])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                ["%crm_person%"],
            )
            prepared = [row[0] for row in cursor.fetchall()]
        assert not [s for s in prepared if "ANY($" in s or "IN ($" in s], prepared
    finally:
        connection.close()
        options.clear()
        options.update(saved)


def test_values_of_another_type_are_converted_or_refused_as_by_djangos_in(people):
    company, rows = people
    key = rows[0].pk
    assert list(Person.objects.filter(among("pk", [str(key)]))) == [rows[0]]
    assert Person.objects.filter(among("last_name", [1, 2.5]), company=company).count() == 0
    with pytest.raises(ValueError):
        list(Person.objects.filter(pk__in=["not a key"]))
    with pytest.raises(ValueError):
        list(Person.objects.filter(among("pk", ["not a key"])))


def test_percent_signs_in_a_statement_without_other_parameters(people):
    """The values' ``%`` reach the database as they are, whether or not the statement has
    parameters of its own (reads, updates and deletes); ``people`` has each of the first
    three odd names twice, once per company."""
    assert [p.last_name for p in Person.objects.filter(among("last_name", ["a%b"]))] == ["a%b"] * 2
    assert [p.last_name for p in Person.objects.filter(among("last_name", ["%%"]))] == ["%%"] * 2
    assert Person.objects.filter(among("last_name", ["%s", "%%"])).update(title="T") == 4
    assert Person.objects.filter(among("last_name", ["%s"])).delete()[0] == 2


def test_decimals_dates_and_booleans_find_what_djangos_in_finds(people):
    """Matching fields may be of any kind: values that are not text or integers are
    prepared by their field and sent as the driver adapts them."""
    company, _ = people
    prices = [Decimal("12.50"), Decimal("3"), None]
    items = Item.objects.bulk_create(
        Item(company=company, name=f"Item {n}", sale_price=price) for n, price in enumerate(prices)
    )
    days = [datetime.date(2026, 1, 31), datetime.date(2026, 2, 1)]
    Invoice.objects.bulk_create(Invoice(company=company, transaction_date=day) for day in days)
    Organization.objects.bulk_create(
        Organization(company=company, name=f"Org {n}", is_customer=n % 2 == 0) for n in range(3)
    )
    cases = [
        (Item, "sale_price", [Decimal("12.5"), Decimal("3.00"), Decimal("7")]),
        (Invoice, "transaction_date", [days[1], datetime.date(2020, 1, 1)]),
        (Organization, "is_customer", [False]),
    ]
    for model, name, values in cases:
        ours = model.objects.filter(among(name, values), company=company)
        django = model.objects.filter(**{f"{name}__in": values}, company=company)
        assert sorted(o.pk for o in ours) == sorted(o.pk for o in django) != []
    assert {i.pk for i in Item.objects.filter(among("sale_price", [Decimal("12.5")]))} == {
        items[0].pk
    }
