"""Two deliveries of one notification with a bad record, at the same time (PostgreSQL).

The second looks its parked records up before the first has committed, finds none, and
inserts: the unique constraint (one row per company and record) refuses its row once
the first commits. That delivery counts on the first one's row (``times_seen``), as a
delivery coming after it does. The first delivery is run from within the second's,
just before its ``INSERT`` (``connection.execute_wrapper``), so the race is certain.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from maestrano_accounts.models import Company
from maestrano_sync.models import SyncRecordError
from tests.sync.test_notifications_input import auth, good

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serialises writers (one lock per file): the race needs PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]

URL = "/maestrano/connec/notifications"
BODY = json.dumps({"organizations": [good("ok-1"), {"group_id": "cld-1", "name": "No id"}]})


@pytest.fixture
def company(two_presets):
    return Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")


def deliver() -> dict:
    answer = Client().post(
        URL, BODY, content_type="application/json", HTTP_AUTHORIZATION=auth("app-1", "key-1")
    )
    assert answer.status_code == 202, answer.content
    return answer.json()


def test_a_bad_record_delivered_twice_at_once_is_parked_once_and_counted_twice(
    company,
):
    other: list[dict] = []
    insert = f'INSERT INTO "{SyncRecordError._meta.db_table}"'

    def the_other_delivery() -> None:  # another worker process, its own connection
        try:
            other.append(deliver())
        finally:
            connections.close_all()

    def just_before_the_insert(execute, sql, params, many, context):
        if sql.startswith(insert) and not other:
            thread = threading.Thread(target=the_other_delivery)
            thread.start()
            thread.join()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(just_before_the_insert):
        answer = deliver()

    assert answer["parked"] == other[0]["parked"] == 1
    parked = SyncRecordError.objects.get()
    assert (parked.times_seen, parked.last_seen_at is not None) == (2, True)
