"""Data steps of the sync's migrations, run backwards and forwards on the test database."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.models import Person
from maestrano_accounts.models import Company

BEFORE = ("maestrano_sync", "0007_sync_run_retrying")
AFTER = ("maestrano_sync", "0008_outbox_gave_up")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_rows_parked_by_giving_up_before_0008_are_marked_given_up():
    company = Company.objects.create(preset="maestrano", group_uid="cld-mig", name="Mig")
    content_type = ContentType.objects.get_for_model(Person)
    old = migrate(BEFORE)
    try:
        OutboxEntry = old.get_model("maestrano_sync", "OutboxEntry")
        common = {
            "company_id": company.pk,
            "entity": "people",
            "content_type_id": content_type.pk,
            "operation": "upsert",
        }
        OutboxEntry.objects.create(
            **common, object_id="1", status="parked", last_error="gave up after 8 attempts: 503"
        )
        OutboxEntry.objects.create(
            **common, object_id="2", status="parked", last_error="HTTP 422: bad email"
        )
        OutboxEntry.objects.create(**common, object_id="3", status="pending", last_error="")
    finally:
        new = migrate(AFTER)

    rows = new.get_model("maestrano_sync", "OutboxEntry").objects.order_by("object_id")
    assert [(row.object_id, row.gave_up) for row in rows] == [
        ("1", True),
        ("2", False),
        ("3", False),
    ]
