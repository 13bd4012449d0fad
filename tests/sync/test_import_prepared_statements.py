"""An import on a PostgreSQL connection that prepares statements (the opt-in
``DATABASE_PREPARE_THRESHOLD``, docs/deploy.md) keeps no generic plan: its tables grow
page after page, and a plan kept from the first pages (the IdMap nearly empty) made the
lookups of the last ones scan every mapping of the company."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Person
from maestrano_integration.transaction_settings import prepares_statements
from maestrano_sync import idmap
from maestrano_sync.importer import run_import
from maestrano_sync.models import IdMap, SyncRun
from tests.helpers.id_maps import link_objects

EACH_PLANNED = "SET LOCAL plan_cache_mode TO force_custom_plan"
AS_CONFIGURED = "SET LOCAL plan_cache_mode TO DEFAULT"

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements: PostgreSQL only"
)


@pytest.fixture
def preparing_connection():
    """The default connection, reopened with server-side binding and every statement
    prepared on its second use; reopened as configured afterwards."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = dict(options)
    connection.close()
    options.update(server_side_binding=True, prepare_threshold=1)
    try:
        yield connection
    finally:
        connection.close()
        options.clear()
        options.update(saved)


@pytest.fixture
def commit_modes():
    """The ``plan_cache_mode`` each commit of a ``crm_person`` insert ran with: a deferred
    trigger (fired at commit, as deferred foreign key checks are) writes it down."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_commit_mode (mode text)")
        cursor.execute(
            "CREATE FUNCTION test_note_commit_mode() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO test_commit_mode VALUES (current_setting('plan_cache_mode'));"
            " RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER test_commit_mode AFTER INSERT ON crm_person "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_note_commit_mode()"
        )

    def modes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT mode FROM test_commit_mode")
            return {row[0] for row in cursor.fetchall()}

    try:
        yield modes
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_commit_mode ON crm_person")
            cursor.execute("DROP FUNCTION test_note_commit_mode()")
            cursor.execute("DROP TABLE test_commit_mode")


def plans_of_prepared_statements() -> list[tuple[str, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%maestrano_sync_idmap%"],
        )
        return cursor.fetchall()


def test_an_import_plans_each_lookup_when_statements_are_prepared(
    sandbox_group, company, preparing_connection, commit_modes
):
    assert prepares_statements(preparing_connection)
    sandbox_group.seed(people=24)

    run = run_import(company=company, page_size=2)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert Person.objects.filter(company=company).count() == 24
    assert IdMap.objects.filter(company=company, entity="people").count() == 24
    plans = plans_of_prepared_statements()
    # The IdMap statements of the pages were prepared (run many times on this connection)...
    assert plans and max(custom for _, _, custom in plans) >= 10, plans
    # ...and planned with their own values every time.
    assert [statement for statement, generic, _ in plans if generic] == []
    # What the commits saw (the deferred foreign key checks run then): the connection's own
    # mode again, so that those checks, one per written row, keep their plans.
    assert commit_modes() == {"auto"}


def test_without_prepared_statements_an_import_sets_no_plan_mode(sandbox_group, company):
    sandbox_group.seed(people=4)
    with CaptureQueriesContext(connection) as captured:
        run_import(company=company, page_size=2)
    assert not prepares_statements(connection)
    statements = [query["sql"] for query in captured.captured_queries]
    assert EACH_PLANNED not in statements
    assert AS_CONFIGURED not in statements


def test_the_ids_of_idmap_lookups_are_never_a_prepared_statements_parameter(
    company, preparing_connection
):
    """A prepared statement whose ids are one array parameter may get a generic plan,
    which PostgreSQL makes, on a table grown since its statistics, a comparison of every
    row with every id (0.1-0.4 s a notification batch, benchmarks/sync.py): the ids are a
    constant of each statement instead, and the lookups find what they should."""
    assert prepares_statements(preparing_connection)
    content_type = ContentType.objects.get_for_model(Person)
    link_objects(company, Person, "people", ((n, f"p-{n}") for n in range(30)))
    for n in range(8):  # past the threshold, the same statement text would be prepared
        ids = [n, n + 1, 1000 + n]
        assert idmap.connec_ids_for_objects(
            company=company, content_type=content_type, object_ids=ids
        ) == {str(n): f"p-{n}", str(n + 1): f"p-{n + 1}"}
        assert set(
            idmap.bulk_lookup(company=company, entity="people", connec_ids=[f"p-{n}", "x"])
        ) == {f"p-{n}"}
    lookups = [statement for statement, _, _ in plans_of_prepared_statements()]
    assert not [
        statement for statement in lookups if "ANY($" in statement or "UNNEST($" in statement
    ]
