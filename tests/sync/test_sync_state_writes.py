"""What the sync writes of a company's per-entity sync state (``SyncState``), on SQLite and
PostgreSQL alike (``maestrano_sync.sync_state``):

* an inbox run applying Connec! notifications: the time of the last notification applied of
  each entity, one statement per entity applied in a group;
* a push: the time of the last push of the entities Connec! accepted, one statement for all
  of them, in the transaction of the push's outcomes;
* a reconciliation: per entity, its watermark read (the row made when missing), the
  watermark after each page that moved it, the time of the run at its end.

Each writes its own columns alone: the other times and the watermark are left as they are.
The notifications arrive through the webhook and are applied by an inbox run, as in
``tests/sync/test_inbox_runs.py``; the concurrent applies (PostgreSQL) call
``maestrano_sync.inbox.apply_payloads`` on two connections at once. The pushes and
reconciliations talk to the sandbox's Connec! over HTTP, as in ``tests/sync/test_push.py``
and ``tests/sync/test_reconcile.py``.
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
from maestrano_sync.mappers import connec_time
from maestrano_sync.models import SyncState
from maestrano_sync.push import drain_outbox
from maestrano_sync.reconcile import reconcile
from maestrano_sync.sync_state import record_times
from tests.sync.test_inbox_runs import new_company, notify, organization

T1 = dt.datetime(2030, 3, 4, 5, 6, tzinfo=dt.UTC)
EARLIER = dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.UTC)
T2 = dt.datetime(2030, 3, 5, 7, 8, tzinfo=dt.UTC)
PUSHED = dt.datetime(2030, 3, 4, 12, 0, tzinfo=dt.UTC)
RECONCILED = dt.datetime(2030, 3, 4, 13, 0, tzinfo=dt.UTC)
WATERMARK = dt.datetime(2030, 3, 4, 11, 0, tzinfo=dt.UTC)

_SAVEPOINT = re.compile(r'^(RELEASE |ROLLBACK TO )?SAVEPOINT ("[^"]+"|\S+)')
#: A transaction of its own (autocommit): its ``BEGIN`` (SQLite: ``BEGIN IMMEDIATE``) and end.
_TRANSACTION = re.compile(r"^(?:BEGIN(?: IMMEDIATE)?|(COMMIT|ROLLBACK))$")


@pytest.fixture(autouse=True)
def presets(two_presets):
    return two_presets


def sync_state_statements(captured) -> list[str]:
    """The statements of ``captured`` spent on ``SyncState``: those naming its table, and
    the savepoints and transactions opened around them alone (``update_or_create``'s,
    ``get_or_create``'s)."""
    table = f'"{SyncState._meta.db_table}"'
    sqls = [query["sql"] for query in captured]
    ours = [table in sql for sql in sqls]
    opened: dict[str, int] = {}
    for index, sql in enumerate(sqls):
        match = _SAVEPOINT.match(sql)
        if match is not None:
            closing, name = match.groups()
        elif (match := _TRANSACTION.match(sql.strip())) is not None:
            closing, name = match[1], ""
        else:
            continue
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


# --- a push --------------------------------------------------------------------------------


def push_all(company: Company) -> list[str]:
    """Drain ``company``'s outbox (every change accepted by the sandbox's Connec!); the
    statements spent on the state."""
    with CaptureQueriesContext(connection) as captured:
        result = drain_outbox(company=company)
    assert (result.parked, result.retried) == (0, 0), result
    assert result.done > 0, result
    return sync_state_statements(captured)


def test_a_push_writes_the_time_of_the_entities_pushed_in_one_statement(company, manual_drain):
    """Organizations and people pushed, the rows new and then there: one statement each time.

    ``update_or_create`` per entity spent six on a new row (its savepoint, the ``SELECT ...
    FOR UPDATE``, ``get_or_create``'s savepoint, the ``INSERT``, two releases) and four on a
    row there (its savepoint, the ``SELECT``, an ``UPDATE`` of every time, the release)."""
    spent = []
    for n in (1, 2):
        org = Organization.objects.create(company=company, name=f"Org {n}")
        Person.objects.create(company=company, first_name=f"Ada {n}", organization=org)
        spent.append(push_all(company))

    assert [len(statements) for statements in spent] == [1, 1], spent
    for statements in spent:  # SQLite's executemany is logged as "2 times: INSERT ..."
        assert all(
            re.sub(r"^\d+ times: ", "", sql).startswith("INSERT") and "ON CONFLICT" in sql
            for sql in statements
        ), statements
    assert set(states(company)) == {"organizations", "people"}


def test_two_successive_pushes_keep_each_entitys_times_and_watermark(company, manual_drain):
    with time_machine.travel(T1, tick=False):
        org = Organization.objects.create(company=company, name="Org 1")
        Person.objects.create(company=company, first_name="Ada", organization=org)
        push_all(company)
    assert states(company) == {
        "organizations": (None, T1, None, None),
        "people": (None, T1, None, None),
    }

    # The inbox and the reconciliation wrote their times meanwhile.
    SyncState.objects.filter(company=company, entity="organizations").update(
        last_notification_at=EARLIER, last_reconcile_at=RECONCILED, reconcile_watermark=WATERMARK
    )
    with time_machine.travel(T2, tick=False):
        org.name = "Org 1 Ltd"
        org.save()
        push_all(company)
    assert states(company) == {
        "organizations": (EARLIER, T2, RECONCILED, WATERMARK),
        "people": (None, T1, None, None),  # not pushed since
    }


# --- a reconciliation ----------------------------------------------------------------------


@pytest.fixture
def lost_notifications(live_sync, settings):
    """The hub never delivers notifications: reconciliation brings the changes."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "BACKGROUND": False},
    }


def reconcile_all(company: Company) -> tuple[dict, list[str]]:
    """Reconcile ``company``: its summary, and the statements spent on the state."""
    with CaptureQueriesContext(connection) as captured:
        summary = reconcile(company=company)
    assert not any("error" in counts for counts in summary.values()), summary
    return summary, sync_state_statements(captured)


def newest(*records: dict) -> dt.datetime:
    return max(connec_time(record["updated_at"]) for record in records)


def test_a_reconciliation_reads_then_writes_each_entity_once_per_page_and_once_at_its_end(
    company, peer, lost_notifications
):
    """Per entity: the watermark read (a new row made by one ``INSERT ... ON CONFLICT DO
    NOTHING``), one write after each page that moved it, one at the end.

    ``get_or_create`` made a new row in a transaction of its own (``SELECT``, ``BEGIN``,
    ``INSERT``, ``COMMIT``)."""
    org = peer.create("organizations", {"name": "Missed Co"})
    peer.create("people", {"first_name": "Ada", "organization_id": org["id"]})

    summary, first = reconcile_all(company)
    entities = set(summary)
    assert {"organizations", "people"} <= entities
    # Two entities with a page of new records (read, make, watermark, time); the others none.
    assert len(first) == 2 * 4 + (len(entities) - 2) * 3, first
    assert set(states(company)) == entities

    peer.update("organizations", org["id"], {"name": "Missed Co Ltd"})
    summary, again = reconcile_all(company)
    assert summary["organizations"]["updated"] == 1
    # One entity with a new record (read, watermark, time); the others: read and time.
    assert len(again) == 3 + (len(entities) - 1) * 2, again
    for sql in first + again:  # SQLite: INSERT OR IGNORE, for ON CONFLICT DO NOTHING
        sql = re.sub(r"^\d+ times: ", "", sql)
        assert sql.startswith(("SELECT", "INSERT")), sql
        assert sql.startswith("SELECT") or re.search("ON CONFLICT|OR IGNORE", sql), sql


def test_two_successive_reconciliations_move_the_watermark_and_keep_the_other_times(
    company, peer, lost_notifications
):
    with time_machine.travel(T1, tick=False):
        org = peer.create("organizations", {"name": "Missed Co"})
        ada = peer.create("people", {"first_name": "Ada", "organization_id": org["id"]})
        summary, _ = reconcile_all(company)
    first = states(company)
    assert first["organizations"] == (None, None, T1, newest(org))
    assert first["people"] == (None, None, T1, newest(ada))
    others = set(summary) - {"organizations", "people"}
    assert others and all(first[entity] == (None, None, T1, None) for entity in others)

    # The inbox and the push wrote their times meanwhile.
    SyncState.objects.filter(company=company, entity="organizations").update(
        last_notification_at=EARLIER, last_push_at=PUSHED
    )
    with time_machine.travel(T2, tick=False):
        changed = peer.update("organizations", org["id"], {"name": "Missed Co Ltd"})
        reconcile_all(company)
    assert newest(changed) > newest(org)
    assert states(company) == {
        **{entity: (None, None, T2, None) for entity in others},
        "organizations": (EARLIER, PUSHED, T2, newest(changed)),
        "people": (None, None, T2, newest(ada)),  # nothing new: its watermark stays
    }


# --- record_times itself -------------------------------------------------------------------


@pytest.mark.django_db
def test_record_times_writes_exactly_the_named_times_of_each_entity():
    company, other = new_company(), new_company("cld-2")
    SyncState.objects.create(
        company=company, entity="people", last_notification_at=EARLIER, last_push_at=EARLIER
    )
    SyncState.objects.create(company=other, entity="people", last_push_at=EARLIER)

    with CaptureQueriesContext(connection) as captured:
        record_times(
            company=company,
            entities={"people", "items"},
            times={"last_push_at": T1, "reconcile_watermark": WATERMARK},
        )

    assert len(captured) == 1, [query["sql"] for query in captured]
    assert states(company) == {
        "people": (EARLIER, T1, None, WATERMARK),
        "items": (None, T1, None, WATERMARK),
    }
    assert states(other) == {"people": (None, EARLIER, None, None)}  # another company's


@pytest.mark.django_db
@pytest.mark.parametrize("times", [{}, {"entity": T1}, {"company_id": 2, "last_push_at": T1}])
def test_record_times_refuses_a_column_that_is_not_a_time(times):
    company = new_company()
    with pytest.raises(ValueError, match="record_times writes some of"):
        record_times(company=company, entities=["people"], times=times)
    assert not SyncState.objects.exists()
