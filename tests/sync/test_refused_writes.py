"""A page of Connec! records whose write the database refuses (docs/sync.md, 'Refused writes').

The refusal the tests provoke is the database's own: a foreign key checked when the page's
transaction commits. Just before the worker inserts the people of a page, the organization
they belong to is deleted (``refused_people``); the commit is refused and rolled back, the
organization with it. On PostgreSQL the tests at the end make the race real: another
connection deletes the organization, or holds a lock the page's write waits for.

Reconciliation and the catch-up import apply such a page again at once, up to
``MAX_ATTEMPTS``; still refused, that entity stops with the reason, its watermark (or its
pending catch-up) kept, and the other entities go on. The initial import leaves the run
failed with the reason (the page applied again at once, as there), retried by its task
from the cursor.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
from django.db import connection, connections

from crm.models import Item, Organization, Person
from maestrano_sync.company_settings import pending_imports, update_sync_settings
from maestrano_sync.models import SyncRecordError, SyncRun, SyncState
from maestrano_sync.selectors import find_local_object
from maestrano_sync.tasks import catch_up_task, drain_all, import_company, reconcile_company
from tests.helpers.live_sync import LIVE_SYNC

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has one writer at a time (a lock on the whole file): a second connection "
    "cannot delete a row or hold a table lock while the page is written",
)

REFUSED = "Refused by the database: IntegrityError: "


@contextlib.contextmanager
def refused_people(organization: Organization, *, times: int) -> Iterator[dict[str, int]]:
    """Before each of the next ``times`` inserts of people on this connection (the eager
    tasks' worker), delete ``organization`` in the same transaction: its commit is refused
    by the foreign key, as when another transaction deleted it between the page's checks
    and its commit. ``["refused"]`` counts them."""
    state = {"refused": 0}
    insert = f'INSERT INTO "{Person._meta.db_table}"'
    delete = f'DELETE FROM "{Organization._meta.db_table}" WHERE "id" = %s'

    def wrapper(execute, sql, params, many, context):
        if sql.startswith(insert) and state["refused"] < times:
            state["refused"] += 1
            context["cursor"].execute(delete, [organization.pk])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield state


@pytest.fixture
def lost_notifications(live_sync, settings):
    """The hub never delivers notifications: reconciliation brings the changes."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "BACKGROUND": False},
    }


@pytest.fixture
def remote(platform, company, peer, lost_notifications):
    """An organization, an item and two of the organization's people in Connec!, the
    organization already here (applied by a first reconciliation of organizations)."""
    org = peer.create("organizations", {"name": "Acme Ltd"})
    reconcile_company.delay(company.pk, ["organizations"]).get()
    peer.create("items", {"code": "SKU1", "name": "Widget"})
    people = [
        peer.create("people", {"first_name": name, "organization_id": org["id"]})
        for name in ("Ada", "Grace")
    ]
    local = find_local_object(company=company, entity="organizations", connec_id=org["id"])
    return {"org": org, "local_org": local, "people": people}


def people_state(company) -> SyncState | None:
    return SyncState.objects.filter(company=company, entity="people").first()


# --- reconciliation ------------------------------------------------------------------------


def test_reconciliation_applies_a_refused_page_again_at_once(company, remote):
    with refused_people(remote["local_org"], times=1) as refusals:
        summary = reconcile_company.delay(company.pk).get()

    assert refusals["refused"] == 1
    assert "error" not in summary["people"]
    assert summary["people"]["created"] == 2
    assert set(Person.objects.values_list("organization__name", flat=True)) == {"Acme Ltd"}
    assert people_state(company).reconcile_watermark is not None
    run = SyncRun.objects.filter(kind=SyncRun.Kind.RECONCILE).latest("pk")
    assert (run.status, run.error) == (SyncRun.Status.SUCCEEDED, "")


def test_a_page_still_refused_stops_its_entity_only_and_keeps_its_watermark(company, remote):
    with refused_people(remote["local_org"], times=100) as refusals:
        summary = reconcile_company.delay(company.pk).get()

    assert refusals["refused"] == LIVE_SYNC["MAX_ATTEMPTS"]  # then it stopped trying
    assert summary["people"]["error"].startswith(REFUSED)
    assert summary["items"]["created"] == 1  # the other entities went on
    assert Item.objects.filter(company=company).count() == 1
    assert not Person.objects.exists()
    assert people_state(company).reconcile_watermark is None  # nothing lost
    run = SyncRun.objects.filter(kind=SyncRun.Kind.RECONCILE).latest("pk")
    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith(f"people: {REFUSED}")
    assert run.counts["created"] == 1  # the item

    again = reconcile_company.delay(company.pk).get()  # the next run, nothing in the way

    assert again["people"]["created"] == 2
    assert Person.objects.filter(organization=remote["local_org"]).count() == 2


# --- the catch-up import ---------------------------------------------------------------------


def test_a_refused_catch_up_stays_pending_and_the_next_run_imports_it(
    platform, company, peer, lost_notifications
):
    # No notifications: one delivered late (after the switch, on the live server's thread)
    # would import the person outside the refused connection, before the catch-up.
    org = peer.create("organizations", {"name": "Acme Ltd"})
    reconcile_company.delay(company.pk, ["organizations"]).get()
    update_sync_settings(company=company, directions={"people": "export", "items": "export"})
    peer.create("people", {"first_name": "Ada", "organization_id": org["id"]})
    peer.create("items", {"code": "SKU1", "name": "Widget"})
    local_org = find_local_object(company=company, entity="organizations", connec_id=org["id"])

    with refused_people(local_org, times=100) as refusals:
        # Switching the import on runs the catch-up at once (eager here).
        update_sync_settings(company=company, directions={"people": "both", "items": "both"})
        assert refusals["refused"] == LIVE_SYNC["MAX_ATTEMPTS"]
        summary = catch_up_task.delay(company.pk).get()  # and again, refused again

    assert summary["people"]["error"].startswith(REFUSED)
    assert pending_imports(company_id=company.pk) == ["people"]  # items: done
    assert Item.objects.filter(company=company).count() == 1
    assert not Person.objects.exists()

    drain_all.delay()  # the beat's safety net enqueues the pending catch-up

    assert pending_imports(company_id=company.pk) == []
    assert Person.objects.get().organization == local_org


# --- the initial import ---------------------------------------------------------------------


@pytest.fixture
def imported_org(sandbox_group, company):
    """Connec! has an organization and two of its people; the organization is imported."""
    sandbox_group.seed(organizations=1, people=2, items=0, invoices=0)
    import_company.delay(company.pk, ["organizations"])
    return Organization.objects.get(company=company)


def test_an_import_page_refused_by_the_database_is_applied_again_at_once(company, imported_org):
    with refused_people(imported_org, times=1) as refusals:
        import_company.delay(company.pk, ["people"])

    assert refusals["refused"] == 1
    run = SyncRun.objects.filter(kind=SyncRun.Kind.IMPORT).latest("pk")
    assert (run.status, run.attempts, run.error) == (SyncRun.Status.SUCCEEDED, 1, "")
    assert Person.objects.filter(organization=imported_org).count() == 2


def test_an_import_page_still_refused_leaves_the_run_failed_with_the_reason_and_resumable(
    company, imported_org
):
    with refused_people(imported_org, times=100) as refusals:
        import_company.delay(company.pk, ["people"])

    run = SyncRun.objects.filter(kind=SyncRun.Kind.IMPORT).latest("pk")
    assert run.status == SyncRun.Status.FAILED
    # MAX_ATTEMPTS (2 in these tests) runs by the task, each applying the page twice.
    assert (run.attempts, refusals["refused"]) == (2, 4)
    assert run.error.startswith(REFUSED)
    assert "resumes from its cursor" in run.error
    assert not Person.objects.exists()

    import_company.delay(company.pk, ["people"])

    run.refresh_from_db()
    assert (run.status, run.attempts) == (SyncRun.Status.SUCCEEDED, 3)
    assert Person.objects.filter(organization=imported_org).count() == 2


def test_imported_people_of_an_organization_deleted_here_meanwhile_are_imported_without_it(
    company, imported_org, settings
):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "PUSH_ON_COMMIT": False},
    }
    imported_org.delete()  # its IdMap row stays until the delete is pushed

    import_company.delay(company.pk, ["people"])

    run = SyncRun.objects.filter(kind=SyncRun.Kind.IMPORT).latest("pk")
    assert (run.status, run.error) == (SyncRun.Status.SUCCEEDED, "")
    assert Person.objects.filter(company=company).count() == 2
    assert not Person.objects.filter(organization__isnull=False).exists()
    assert not SyncRecordError.objects.exists()


# --- real concurrent writes (PostgreSQL) ------------------------------------------------------


def in_another_connection(work) -> None:
    """Run ``work()`` in a thread of its own, hence on a connection of its own."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@postgresql_only
def test_an_organization_deleted_by_another_transaction_mid_page_leaves_its_people_without_it(
    company, remote
):
    deleted: list[int] = []
    insert = f'INSERT INTO "{Person._meta.db_table}"'

    def delete_the_organization() -> None:  # another request of our app, committed at once
        Organization.objects.filter(pk=remote["local_org"].pk).delete()
        deleted.append(remote["local_org"].pk)

    def just_before_the_insert(execute, sql, params, many, context):
        if sql.startswith(insert) and not deleted:
            in_another_connection(delete_the_organization)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(just_before_the_insert):
        summary = reconcile_company.delay(company.pk, ["people"]).get()

    assert deleted, "the organization was not deleted while the page was written"
    assert "error" not in summary["people"]
    assert summary["people"]["created"] == 2
    assert list(Person.objects.values_list("organization", flat=True)) == [None, None]
    assert people_state(company).reconcile_watermark is not None


@postgresql_only
def test_a_lock_held_by_another_transaction_stops_that_entity_only(company, remote):
    locked = threading.Event()
    release = threading.Event()

    def hold_a_lock_on_people() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        f'LOCK TABLE "{Person._meta.db_table}" IN SHARE ROW EXCLUSIVE MODE'
                    )
                locked.set()
                release.wait(timeout=60)
        finally:
            locked.set()
            connections.close_all()

    holder = threading.Thread(target=hold_a_lock_on_people)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        summary = reconcile_company.delay(company.pk).get()
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert summary["people"]["error"].startswith("Refused by the database: OperationalError: ")
    assert "lock timeout" in summary["people"]["error"]
    assert summary["items"]["created"] == 1
    assert people_state(company).reconcile_watermark is None

    again = reconcile_company.delay(company.pk).get()

    assert again["people"]["created"] == 2
