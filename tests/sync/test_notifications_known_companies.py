"""The webhook remembers the companies it found (``maestrano_sync.notifications.known_companies``):
one query less per notification, and still the right tenant or none when a company goes.

The database is committed for real (``transaction=True``): the webhook then runs in
autocommit, as under gunicorn, which is where it uses what it remembers.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from maestrano_accounts.models import Company
from maestrano_sync.models import InboxEntry, InboxRecord
from tests.sync.test_notifications_input import post, record

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """The companies whose processing was enqueued (not run: the rows stay as stored)."""
    companies: list[int] = []
    monkeypatch.setattr(
        "maestrano_sync.notifications.enqueue_inbox",
        # As the real one: once the transaction commits (dropped if it rolls back).
        lambda *, company_id: transaction.on_commit(lambda: companies.append(company_id)),
    )
    return companies


@pytest.fixture
def companies(two_presets):
    return {
        "one": Company.objects.create(preset="maestrano", group_uid="cld-1", name="One"),
        "two": Company.objects.create(preset="maestrano", group_uid="cld-2", name="Two"),
        # The same group in another marketplace: another tenant.
        "acme": Company.objects.create(preset="acme-market", group_uid="cld-1", name="Acme"),
    }


def posted(client, body, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        response = post(client, body, **kwargs)
    assert response.status_code == 202, response.content
    return response.json(), len(queries)


def delete_behind_our_back(company):
    """Delete the row as another process would: no signal reaches this one."""
    InboxEntry.objects.filter(company=company).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Company._meta.db_table} WHERE id = %s", [company.pk])


def test_a_known_company_costs_no_query_and_stays_in_its_preset(client, companies, enqueued):
    first, first_queries = posted(client, {"organizations": [record("cld-1")]})
    second, second_queries = posted(client, {"organizations": [record("cld-1", id="o-2")]})
    acme, _ = posted(
        client,
        {"people": [record("cld-1", id="p-9")]},
        credentials=("acme-app", "acme-key"),
        url="/maestrano/acme-market/connec/notifications",
    )

    assert second_queries == first_queries - 1  # the INSERT only
    stored = {entry.pk: entry.company for entry in InboxEntry.objects.all()}
    assert stored == {
        first["notification"]: companies["one"],
        second["notification"]: companies["one"],
        acme["notification"]: companies["acme"],
    }
    assert enqueued == [companies["one"].pk, companies["one"].pk, companies["acme"].pk]


def test_a_company_deleted_by_another_process_is_looked_up_again(client, companies):
    posted(client, {"organizations": [record("cld-1")]})
    delete_behind_our_back(companies["one"])

    answer, _ = posted(client, {"organizations": [record("cld-1", id="o-2")]})

    assert answer == {"accepted": 0, "notification": None}  # an unknown group: skipped
    assert not InboxEntry.objects.exists()
    again = Company.objects.create(preset="maestrano", group_uid="cld-1", name="One again")
    answer, _ = posted(client, {"organizations": [record("cld-1", id="o-3")]})
    assert InboxEntry.objects.get(pk=answer["notification"]).company == again


def test_of_several_companies_a_deleted_one_leaves_the_others_stored(client, companies, enqueued):
    posted(client, {"organizations": [record("cld-1"), record("cld-2", id="o-2")]})
    delete_behind_our_back(companies["two"])

    answer, _ = posted(client, {"organizations": [record("cld-1"), record("cld-2", id="o-2")]})

    assert answer["accepted"] == 1
    assert [entry.company for entry in InboxEntry.objects.all()] == [companies["one"]] * 2
    # The first try's enqueues were rolled back with it: none for the lost company.
    assert enqueued == [companies["one"].pk, companies["two"].pk, companies["one"].pk]


def test_a_company_deleted_in_this_process_is_forgotten_at_once(client, companies):
    posted(client, {"organizations": [record("cld-1")]})
    companies["one"].delete()

    answer, queries = posted(client, {"organizations": [record("cld-1", id="o-2")]})

    assert answer == {"accepted": 0, "notification": None}
    assert queries == 1  # the company lookup, and no INSERT refused by the database


def test_a_known_company_notification_is_one_statement_on_postgresql(client, companies):
    """The inbox row and its index of records: one statement on PostgreSQL, atomic without
    a transaction (no BEGIN and COMMIT round trips); two in a transaction elsewhere."""
    posted(client, {"organizations": [record("cld-1")]})
    body = {"organizations": [record("cld-1", id="o-2")], "people": [record("cld-1", id="p-2")]}

    second, queries = posted(client, body)

    # SQLite: BEGIN IMMEDIATE, the two INSERTs and COMMIT.
    assert queries == (1 if connection.vendor == "postgresql" else 4)
    assert sorted(
        InboxRecord.objects.filter(entry_id=second["notification"]).values_list(
            "company", "entity", "connec_id"
        )
    ) == [
        (companies["one"].pk, "organizations", "o-2"),
        (companies["one"].pk, "people", "p-2"),
    ]


def test_the_webhook_stores_outside_the_requests_transaction(client, companies, monkeypatch):
    """Under ``ATOMIC_REQUESTS`` too: the webhook stores all or nothing itself, in autocommit
    (one statement on PostgreSQL), so a company deleted meanwhile is looked up again
    instead of failing the request's COMMIT."""
    from maestrano_sync import notifications

    store = notifications.insert_inbox_entry
    in_transaction: list[bool] = []

    def recording(**kwargs):
        in_transaction.append(connection.in_atomic_block)
        return store(**kwargs)

    monkeypatch.setattr(notifications, "insert_inbox_entry", recording)
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    stored, _ = posted(client, {"organizations": [record("cld-1", id="o-atomic")]})

    assert in_transaction == [False]
    assert InboxRecord.objects.get(entry_id=stored["notification"]).connec_id == "o-atomic"
