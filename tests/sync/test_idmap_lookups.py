"""The IdMap's lookups of many ids send them as one parameter, in one statement: 40,000
ids pass SQLite's limit on parameters (32,766), and the answer is the one of asking for
each id alone, never another company's rows."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Person
from maestrano_accounts.models import Company
from maestrano_sync import idmap
from maestrano_sync.models import IdMap
from tests.helpers.id_maps import link_objects

pytestmark = pytest.mark.django_db

MANY = 40_000


@pytest.fixture
def mapped():
    """Two companies with the same Connec! ids mapped (tenants never see each other's)."""
    ours = Company.objects.create(group_uid="cld-ours", name="Ours")
    theirs = Company.objects.create(group_uid="cld-theirs", name="Theirs")
    for company, offset in ((ours, 0), (theirs, 100)):
        link_objects(company, Person, "people", ((offset + n, f"p-{n}") for n in range(50)))
    return ours, ContentType.objects.get_for_model(Person)


def _sql_of(call) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        answer = call()
    return answer, [query["sql"] for query in captured.captured_queries]


def test_many_connec_ids_in_one_statement(mapped):
    company, _ = mapped
    few, few_sql = _sql_of(
        lambda: idmap.local_pks_for(company=company, entity="people", connec_ids=["p-1", "p-2"])
    )
    wanted = ["p-1", "p-2", *(f"unknown-{n}" for n in range(MANY))]
    many, many_sql = _sql_of(
        lambda: idmap.local_pks_for(company=company, entity="people", connec_ids=wanted)
    )
    assert few == many == {"p-1": 1, "p-2": 2}
    assert len(few_sql) == len(many_sql) == 1


def test_many_object_ids_answer_as_one_at_a_time(mapped):
    company, content_type = mapped
    object_ids = [*range(0, 60), *range(10_000, 10_000 + MANY)]
    linked = idmap.connec_ids_for_objects(
        company=company, content_type=content_type, object_ids=object_ids
    )
    assert linked == {str(n): f"p-{n}" for n in range(50)}
    # The content type's key does as well as the content type.
    assert (
        idmap.connec_ids_for_objects(
            company=company, content_type=content_type.pk, object_ids=object_ids
        )
        == linked
    )
    one_at_a_time = {}
    for n in range(0, 60):
        one_at_a_time.update(
            idmap.connec_ids_for_objects(company=company, content_type=content_type, object_ids=[n])
        )
    assert one_at_a_time == linked


def test_no_ids_ask_nothing(mapped):
    company, content_type = mapped
    answer, sql = _sql_of(
        lambda: idmap.connec_ids_for_objects(
            company=company, content_type=content_type, object_ids=[]
        )
    )
    assert answer == {} and sql == []


def test_deleting_many_child_links_at_once(mapped):
    """Relinking the lines of many records deletes their old links in one statement each,
    however many there are, and keeps the other company's."""
    company, content_type = mapped
    IdMap.objects.filter(company=company).update(entity="invoices/lines")
    idmap.relink_children(
        company=company,
        entity="invoices/lines",
        content_type=content_type,
        rows=[],
        unlinked=[*(str(n) for n in range(50)), *(str(n) for n in range(10_000, 10_000 + MANY))],
    )
    assert not IdMap.objects.filter(company=company).exists()
    assert IdMap.objects.exclude(company=company).count() == 50


def test_lookups_across_entities_and_hash_reset_take_many_ids(mapped):
    company, _ = mapped
    IdMap.objects.filter(company=company).update(last_pushed_hash="abc")
    wanted = ["p-3", *(f"unknown-{n}" for n in range(MANY))]
    assert idmap.owners_of(company=company, connec_ids=wanted) == {("people", "p-3"): "3"}
    assert set(idmap.maps_for_keys(company=company, connec_ids=wanted)) == {("people", "p-3")}
    idmap.forget_pushed_hash(company=company, entity="people", connec_ids=wanted)
    assert set(
        IdMap.objects.filter(company=company, last_pushed_hash="").values_list(
            "connec_id", flat=True
        )
    ) == {"p-3"}
    # The other company's row of the same Connec! id keeps its own.
    assert IdMap.objects.exclude(company=company).filter(last_pushed_hash="").count() == 50


ODD_IDS = [
    "a%b",
    "%s",
    "%%",
    "it's",
    'q"uote',
    "{brace}",
    "com,ma",
    "NULL",
    "ünï-😀",
    " sp ace",
    "x\\y",
]


def test_ids_with_quotes_percents_and_braces_are_found_as_they_are(mapped):
    """The ids reach the database as the values they are (PostgreSQL gets them as one
    constant array, quoted by the driver): none is read as SQL, a placeholder or an array's
    syntax, and none finds another."""
    company, content_type = mapped
    link_objects(company, Person, "people", ((f"odd-{n}", odd) for n, odd in enumerate(ODD_IDS)))
    found = idmap.bulk_lookup(company=company, entity="people", connec_ids=[*ODD_IDS, "a", "b"])
    assert sorted(found) == sorted(ODD_IDS)
    for n, odd in enumerate(ODD_IDS):
        assert idmap.owners_of(company=company, connec_ids=[odd]) == {("people", odd): f"odd-{n}"}
    objects = idmap.connec_ids_for_objects(
        company=company, content_type=content_type, object_ids=[f"odd-{n}" for n in range(20)]
    )
    assert objects == {f"odd-{n}": odd for n, odd in enumerate(ODD_IDS)}
    assert idmap.owners_of(company=company, connec_ids=["%", "'", "{}", ""]) == {}
