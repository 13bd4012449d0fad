"""A local change committed while a Connec! notification is being applied (PostgreSQL).

PostgreSQL checks foreign keys when a transaction commits. A user of our app links a
contact to an organization at the moment the worker applies another app's deletion of
that organization: the deletion has emptied the references it found (none) and not yet
deleted the row, the user's save commits, and the deletion's commit is refused. Seen
once in ``tests/sync/test_chaos.py`` as a notification failed for good. The
notification must wait and be applied again, from what is committed then, so that both
sides converge.

Django's database instrumentation (``connection.execute_wrapper``, installed on the
worker's connection from ``pre_delete``) runs the user's save just before the
organization's ``DELETE``, so the race is certain rather than lucky.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import connection, connections
from django.db.models.signals import post_delete, pre_delete

from crm.models import Organization, Person
from maestrano_sync.models import InboxEntry
from maestrano_sync.selectors import connec_id_for, find_local_object
from maestrano_sync.tasks import drain_all
from tests.helpers.live_sync import deliver_notifications

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers (one lock per file): the race needs PostgreSQL",
)


def test_a_contact_linked_while_the_deletion_of_its_organization_is_applied_converges(
    platform, company, peer, held_sync
):
    remote = peer.create("organizations", {"name": "Doomed Co"})
    deliver_notifications()
    org = find_local_object(company=company, entity="organizations", connec_id=remote["id"])
    saved: list[Person] = []
    delete_sql = f'DELETE FROM "{Organization._meta.db_table}"'

    def user_links_a_contact() -> None:  # another request of our app, on its own connection
        try:
            saved.append(
                Person.objects.create(company=company, first_name="Grace", organization_id=org.pk)
            )
        finally:
            connections.close_all()

    def just_before_the_delete(execute, sql, params, many, context):
        if sql.startswith(delete_sql) and not saved:
            thread = threading.Thread(target=user_links_a_contact)
            thread.start()
            thread.join()
        return execute(sql, params, many, context)

    wrapped = contextlib.ExitStack()

    def deleting(sender, using, **kwargs):  # on the worker's thread and connection
        wrapped.enter_context(connections[using].execute_wrapper(just_before_the_delete))

    def deleted(sender, **kwargs):
        wrapped.close()

    pre_delete.connect(deleting, sender=Organization, weak=False)
    post_delete.connect(deleted, sender=Organization, weak=False)
    try:
        peer.update("organizations", remote["id"], {"status": "INACTIVE"})
        deliver_notifications()
    finally:
        pre_delete.disconnect(deleting, sender=Organization)
        post_delete.disconnect(deleted, sender=Organization)
        wrapped.close()

    assert saved, "the user's save did not happen while the deletion was applied"
    deletion = InboxEntry.objects.order_by("pk").last()
    assert deletion.status == InboxEntry.Status.PENDING  # not failed for good
    assert "applied again" in deletion.last_error
    assert "crm_person" in deletion.last_error  # what was in the way

    drain_all.delay()  # the beat's safety net (the worker retries it after a backoff)

    deletion.refresh_from_db()
    assert (deletion.status, deletion.last_error) == (InboxEntry.Status.DONE, "")
    assert not Organization.objects.filter(pk=org.pk).exists()
    person = Person.objects.get(pk=saved[0].pk)
    assert person.organization is None  # the reference emptied, as its foreign key says
    pushed = peer.get("people", connec_id_for(company=company, obj=person))
    assert pushed["first_name"] == "Grace"
    assert not InboxEntry.objects.filter(status=InboxEntry.Status.FAILED).exists()
