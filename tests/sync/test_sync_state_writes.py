"""What the inbox writes of a company's per-entity sync state (``SyncState``) when it applies
Connec! notifications: the time of the last notification applied of each entity, one
statement per entity applied in a group, the other times and the reconciliation watermark
left as they are, on SQLite and PostgreSQL alike.

The notifications arrive through the webhook and are applied by an inbox run, as in
``tests/sync/test_inbox_runs.py``; the concurrent applies (PostgreSQL) call
``maestrano_sync.inbox.apply_payloads`` on two connections at once.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from crm.models import Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.company_settings import update_sync_settings
from maestrano_sync.inbox import apply_payloads, process_inbox
from maestrano_sync.models import SyncState
from tests.sync.test_inbox_runs import new_company, notify, organization

T1 = dt.datetime(2030, 3, 4, 5, 6, tzinfo=dt.UTC)
EARLIER = dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.UTC)
T2 = dt.datetime(2030, 3, 5, 7, 8, tzinfo=dt.UTC)
PUSHED = dt.datetime(2030, 3, 4, 12, 0, tzinfo=dt.UTC)
RECONCILED = dt.datetime(2030, 3, 4, 13, 0, tzinfo=dt.UTC)
WATERMARK = dt.datetime(2030, 3, 4, 11, 0, tzinfo=dt.UTC)

_SAVEPOINT = re.compile(r'^(RELEASE |ROLLBACK TO )?SAVEPOINT ("[^"]+"|\S+)')


@pytest.fixture(autouse=True)
def presets(two_presets):
    return two_presets


def sync_state_statements(captured) -> list[str]:
    """The statements of ``captured`` spent on ``SyncState``: those naming its table, and
    the savepoints opened around them alone (``update_or_create``'s, ``get_or_create``'s)."""
    table = f'"{SyncState._meta.db_table}"'
    sqls = [query["sql"] for query in captured]
    ours = [table in sql for sql in sqls]
    opened: dict[str, int] = {}
    for index, sql in enumerate(sqls):
        match = _SAVEPOINT.match(sql)
        if match is None:
            continue
        closing, name = match.groups()
        if not closing:
            opened[name] = index
            continue
        start = opened.pop(name, None)
        if start is None:
            continue
        inside = ours[start + 1 : index]
        if inside and all(inside) and any(table in sql for sql in sqls[start + 1 : index]):
            ours[start] = ours[index] = True
    return [sql for sql, mine in zip(sqls, ours, strict=True) if mine]


def states(company: Company) -> dict[str, tuple]:
    return {
        state.entity: (
            state.last_notification_at,
            state.last_push_at,
            state.last_reconcile_at,
            state.reconcile_watermark,
        )
        for state in SyncState.objects.filter(company=company)
    }


def person(company: Company, n: int) -> dict:
    return {
        "id": f"p-{n}",
        "group_id": company.group_uid,
        "first_name": f"Ada {n}",
        "updated_at": f"2030-01-01T00:00:{n:02d}Z",
    }


# --- the statements of an inbox run ------------------------------------------------------


@pytest.mark.django_db
def test_an_inbox_run_writes_one_statement_per_entity_applied_to_the_sync_state(client):
    """Two entities applied, the rows new and then there: two statements each time.

    ``update_or_create`` spent six on each new row (its savepoint, the ``SELECT ... FOR
    UPDATE``, ``get_or_create``'s savepoint, the ``INSERT``, two releases) and four on each
    row there (its savepoint, the ``SELECT``, an ``UPDATE`` of every column, the release)."""
    company = new_company()
    spent = []
    for n in (1, 2):
        notify(
            client, {"organizations": [organization(company, n)], "people": [person(company, n)]}
        )
        with CaptureQueriesContext(connection) as captured:
            assert process_inbox(company=company).processed == 1
        spent.append(sync_state_statements(captured))

    assert (Organization.objects.count(), Person.objects.count()) == (2, 2)
    assert [len(statements) for statements in spent] == [2, 2], spent
    for statements in spent:  # SQLite's executemany is logged as "1 times: INSERT ..."
        assert all(
            re.sub(r"^\d+ times: ", "", sql).startswith("INSERT") and "ON CONFLICT" in sql
            for sql in statements
        ), statements
    assert set(states(company)) == {"organizations", "people"}


# --- the values kept ---------------------------------------------------------------------


@pytest.mark.django_db
def test_two_successive_applies_keep_each_entitys_times_and_watermark(client):
    company = new_company()
    update_sync_settings(company=company, directions={"items": "off"})  # items are held
    with time_machine.travel(T1, tick=False):
        notify(
            client,
            {
                "organizations": [organization(company, 1)],
                "people": [person(company, 1)],
                "items": [{"id": "i-1", "group_id": company.group_uid, "code": "I1"}],
            },
        )
        assert process_inbox(company=company).result.held == 1
    assert states(company) == {  # none for the items: not applied
        "organizations": (T1, None, None, None),
        "people": (T1, None, None, None),
    }

    # The push and reconciliation wrote their times meanwhile (their own rows of the state).
    SyncState.objects.filter(company=company, entity="organizations").update(
        last_push_at=PUSHED, last_reconcile_at=RECONCILED, reconcile_watermark=WATERMARK
    )
    other = new_company("cld-2")
    with time_machine.travel(T2, tick=False):
        notify(client, {"organizations": [organization(company, 2)]})
        notify(client, {"organizations": [organization(other, 3)]})
        assert process_inbox(company=company).processed == 1
    assert states(company) == {
        "organizations": (T2, PUSHED, RECONCILED, WATERMARK),
        "people": (T1, None, None, None),  # not notified since
    }
    assert states(other) == {}  # its notification is not applied yet
    assert SyncState.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_state_is_written_in_one_statement_outside_any_transaction(two_presets):
    """In autocommit, as an inbox run applies a group, the write is one statement of its
    own: no ``BEGIN`` and ``COMMIT`` around it (two more round trips on PostgreSQL)."""
    company = new_company()
    seen: list[bool] = []
    table = f'"{SyncState._meta.db_table}"'

    def watch(execute, sql, params, many, context):
        if table in sql:
            seen.append(context["connection"].in_atomic_block)
        return execute(sql, params, many, context)

    for n in (1, 2):  # a new row, then the row there
        with connection.execute_wrapper(watch):
            apply_payloads(
                company=company, payloads=[{"organizations": [organization(company, n)]}]
            )
    assert seen == [False, False]
    assert SyncState.objects.get(company=company).last_notification_at is not None


# --- concurrent applies (PostgreSQL) ------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers (one lock per file): no two writes at once",
)
@pytest.mark.parametrize("row_there", [False, True], ids=["new-row", "row-there"])
@pytest.mark.django_db(transaction=True)
def test_two_applies_at_once_write_one_row_and_keep_the_other_times(two_presets, row_there):
    """Two workers apply notifications of one entity of one company at the same moment (each
    on its own connection, both reaching the state's write together): one row, the time of
    one of them, and what the push and reconciliation wrote kept."""
    company = new_company()
    if row_there:
        SyncState.objects.create(
            company=company,
            entity="organizations",
            last_notification_at=EARLIER,
            last_push_at=PUSHED,
            last_reconcile_at=RECONCILED,
            reconcile_watermark=WATERMARK,
        )
    together = threading.Barrier(2, timeout=20)
    table = f'"{SyncState._meta.db_table}"'
    errors: list[BaseException] = []
    times: list[dt.datetime] = []

    def apply(n: int) -> None:
        waited: list[bool] = []

        def meet(execute, sql, params, many, context):
            if table in sql and not waited:
                waited.append(True)
                together.wait()
            return execute(sql, params, many, context)

        try:
            with connections["default"].execute_wrapper(meet):
                start = dt.datetime.now(dt.UTC)
                apply_payloads(
                    company=company, payloads=[{"organizations": [organization(company, n)]}]
                )
                times.append(start)
        except BaseException as error:  # reported by the test's thread
            errors.append(error)
            together.abort()
        finally:
            connections.close_all()

    workers = [threading.Thread(target=apply, args=(n,)) for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert not errors, errors
    assert Organization.objects.filter(company=company).count() == 2
    (state,) = SyncState.objects.filter(company=company)
    assert state.entity == "organizations"
    assert state.last_notification_at >= min(times)
    assert state.last_notification_at > EARLIER
    kept = (PUSHED, RECONCILED, WATERMARK) if row_there else (None, None, None)
    assert (state.last_push_at, state.last_reconcile_at, state.reconcile_watermark) == kept
