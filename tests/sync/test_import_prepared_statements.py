"""An import on a PostgreSQL connection that prepares statements (the opt-in
``DATABASE_PREPARE_THRESHOLD``, docs/deploy.md) keeps no generic plan: its tables grow
page after page, and a plan kept from the first pages (the IdMap nearly empty) made the
lookups of the last ones scan every mapping of the company."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Person
from maestrano_integration.query_plans import prepares_statements
from maestrano_sync.importer import run_import
from maestrano_sync.models import IdMap, SyncRun

from .test_import_commit import transactions

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


def plans_of_prepared_statements() -> list[tuple[str, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%maestrano_sync_idmap%"],
        )
        return cursor.fetchall()


def test_an_import_plans_each_lookup_when_statements_are_prepared(
    sandbox_group, company, preparing_connection
):
    assert prepares_statements(preparing_connection)
    sandbox_group.seed(people=24)

    with CaptureQueriesContext(connection) as captured:
        run = run_import(company=company, page_size=2)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert Person.objects.filter(company=company).count() == 24
    assert IdMap.objects.filter(company=company, entity="people").count() == 24
    plans = plans_of_prepared_statements()
    # The IdMap statements of the pages were prepared (run many times on this connection)...
    assert plans and max(custom for _, _, custom in plans) >= 10, plans
    # ...and planned with their own values every time.
    assert [statement for statement, generic, _ in plans if generic] == []
    # Each page's transaction goes back to the connection's own plans before its commit,
    # whose deferred foreign key checks (one per written row) keep their plans.
    pages = [
        part
        for part in transactions([query["sql"] for query in captured.captured_queries])
        if EACH_PLANNED in part
    ]
    assert len(pages) == sum(run.entities.values_list("pages", flat=True)) >= 12
    for part in pages:
        assert part[-1] == AS_CONFIGURED, part[-3:]
        assert part.count(AS_CONFIGURED) == 1


def test_without_prepared_statements_an_import_sets_no_plan_mode(sandbox_group, company):
    sandbox_group.seed(people=4)
    with CaptureQueriesContext(connection) as captured:
        run_import(company=company, page_size=2)
    assert not prepares_statements(connection)
    statements = [query["sql"] for query in captured.captured_queries]
    assert EACH_PLANNED not in statements
    assert AS_CONFIGURED not in statements
