"""An import page's transaction on PostgreSQL commits without waiting for the disk flush,
and so do the company lock's writes around it (one statement each), unless
``MAESTRANO["SYNC"]["IMPORT_SYNCHRONOUS_COMMIT"]`` (docs/settings.md)."""

from __future__ import annotations

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from crm.models import Invoice, InvoiceLine
from maestrano_integration.transaction_settings import COMMIT_WITHOUT_FLUSH_EXPRESSION
from maestrano_sync.importer import run_import
from maestrano_sync.models import IdMap, SyncLock, SyncRun

RELAXED_COMMIT = "SET LOCAL synchronous_commit TO OFF"


def import_statements(company) -> tuple[SyncRun, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        run = run_import(company=company, page_size=2)
    return run, [query["sql"] for query in captured.captured_queries]


def transactions(statements: list[str]) -> list[list[str]]:
    """The statements of each BEGIN ... COMMIT, in order."""
    parts: list[list[str]] = []
    current: list[str] | None = None
    for sql in statements:
        if sql == "BEGIN":
            current = []
        elif sql == "COMMIT" and current is not None:
            parts.append(current)
            current = None
        elif current is not None:
            current.append(sql)
    return parts


def test_each_import_page_commits_without_waiting_for_the_flush(sandbox_group, company):
    sandbox_group.seed(organizations=3, people=2, items=2, invoices=3)

    run, statements = import_statements(company)

    assert run.status == SyncRun.Status.SUCCEEDED
    pages = sum(run.entities.values_list("pages", flat=True))
    assert pages >= 6  # several per entity
    in_transactions = [sql for part in transactions(statements) for sql in part]
    lock_writes = [sql for sql in statements if COMMIT_WITHOUT_FLUSH_EXPRESSION in sql]
    if connection.vendor == "postgresql":
        # Once per page, inside its transaction, before any of its writes.
        assert statements.count(RELAXED_COMMIT) == pages
        relaxed = [part for part in transactions(statements) if RELAXED_COMMIT in part]
        assert len(relaxed) == pages
        for part in relaxed:
            before = part[: part.index(RELAXED_COMMIT)]
            assert not any(sql.startswith(("INSERT", "UPDATE", "DELETE")) for sql in before)
        # Taking and releasing the company lock around each page: one statement each, its
        # own transaction (autocommit), relaxed from inside (the company's first take finds
        # no lock row yet, and is tried again once the row is made).
        assert len(lock_writes) == 2 * pages + 1
        lock_table = connection.ops.quote_name(SyncLock._meta.db_table)
        assert all(sql.startswith(f"UPDATE {lock_table} ") for sql in lock_writes)
        assert not set(lock_writes) & set(in_transactions)
    else:
        assert RELAXED_COMMIT not in statements
        assert not lock_writes
    # What the pages wrote is there all the same, lines and their links included.
    assert Invoice.objects.filter(company=company).count() == 3
    assert InvoiceLine.objects.filter(company=company).count() == 6
    assert IdMap.objects.filter(company=company, entity="invoices/lines").count() == 6


def test_the_setting_keeps_every_page_waiting_for_the_flush(sandbox_group, company, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "IMPORT_SYNCHRONOUS_COMMIT": True},
    }
    sandbox_group.seed(organizations=2, people=2, items=1, invoices=1)

    run, statements = import_statements(company)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert RELAXED_COMMIT not in statements
    assert not any(COMMIT_WITHOUT_FLUSH_EXPRESSION in sql for sql in statements)
    assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 6


def test_an_import_inside_a_callers_transaction_leaves_its_commit_alone(sandbox_group, company):
    sandbox_group.seed(organizations=2, people=2, items=1, invoices=1)

    with transaction.atomic():
        run, statements = import_statements(company)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert RELAXED_COMMIT not in statements
    assert not any(COMMIT_WITHOUT_FLUSH_EXPRESSION in sql for sql in statements)
    assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 6
