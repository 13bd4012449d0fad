"""The outbox listens to the mapped models only: other models' rows are deleted without
being loaded first, and a mapper registered late (an app after ``sync``) is listened to."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Item, Organization
from maestrano_accounts.models import Company
from maestrano_sync.mappers import Mapper
from maestrano_sync.models import IdMap, OutboxEntry
from maestrano_sync.registry import MapperRegistry

pytestmark = pytest.mark.django_db


def test_id_maps_are_deleted_in_one_statement_without_being_read():
    company = Company.objects.create(preset="maestrano", group_uid="cld-fast", name="Fast")
    organization = Organization.objects.create(company=company, name="Acme")
    OutboxEntry.objects.all().delete()
    IdMap.objects.create(
        company=company,
        entity="organizations",
        connec_id="org-1",
        content_type=ContentType.objects.get_for_model(Organization),
        object_id=str(organization.pk),
    )

    with CaptureQueriesContext(connection) as queries:
        deleted, _ = IdMap.objects.filter(company=company).delete()

    assert deleted == 1
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert "SELECT" not in statements
    assert statements.count("DELETE") == 1


def test_a_saved_mapped_model_still_writes_its_outbox_row():
    company = Company.objects.create(preset="maestrano", group_uid="cld-out", name="Out")
    Organization.objects.create(company=company, name="Acme")
    assert OutboxEntry.objects.filter(company=company, entity="organizations").count() == 1


def test_listeners_hear_of_mappers_registered_before_and_after_them():
    registry = MapperRegistry()
    registry.register_mapper(Organization, type("Orgs", (Mapper,), {"entity": "organizations"}))
    heard: list[str] = []

    registry.on_register(lambda mapper: heard.append(mapper.entity))
    registry.register_mapper(Item, type("Items", (Mapper,), {"entity": "items"}))

    assert heard == ["organizations", "items"]
