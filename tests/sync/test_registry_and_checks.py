"""The mapper registry's ordering and the system checks that catch bad mappers."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.db import models
from django.test.utils import isolate_apps

from crm.models import Invoice, InvoiceLine, Item, Organization, Person
from maestrano_sync import registry as sync_registry
from maestrano_sync.checks import check_registry
from maestrano_sync.mappers import EXPORT_ONLY, ChildMapping, Mapper
from maestrano_sync.registry import AlreadyRegistered, MapperRegistry


def ids(messages) -> list[str]:
    return sorted(message.id for message in messages)


def test_the_example_mappers_import_in_dependency_order():
    assert sync_registry.registry.import_order() == ["organizations", "people", "items", "invoices"]
    assert sync_registry.for_model(Person).entity == "people"
    assert sync_registry.for_entity("invoices").model is Invoice


def test_the_example_mappers_pass_the_checks():
    from maestrano_sync.checks import check_mappers

    assert check_mappers() == []


def test_import_order_skips_entities_whose_import_is_off_and_honours_depends_on():
    registry = MapperRegistry()

    @registry.register(Item)
    class Items(Mapper):
        entity = "items"
        fields = {"name": "name"}
        depends_on = ("organizations",)

    @registry.register(Organization)
    class Organizations(Mapper):
        entity = "organizations"
        fields = {"name": "name"}

    @registry.register(Person)
    class ExportOnlyPeople(Mapper):
        entity = "people"
        directions = EXPORT_ONLY

    assert registry.dependency_order() == ["organizations", "items", "people"]
    assert registry.import_order() == ["organizations", "items"]
    assert registry.import_order(["items"]) == ["items"]
    assert check_registry(registry) == []


def test_one_mapper_per_model_and_per_entity():
    registry = MapperRegistry()
    registry.register_mapper(Organization, type("A", (Mapper,), {"entity": "organizations"}))

    with pytest.raises(AlreadyRegistered):
        registry.register_mapper(Organization, type("B", (Mapper,), {"entity": "people"}))
    with pytest.raises(AlreadyRegistered):
        registry.register_mapper(Person, type("C", (Mapper,), {"entity": "organizations"}))


def test_checks_catch_unknown_entity_missing_field_unregistered_reference_and_cycles():
    registry = MapperRegistry()

    @registry.register(Organization)
    class Widgets(Mapper):
        entity = "widgets"
        fields = {"name": "name", "colour": "colour"}

    @registry.register(Person)
    class People(Mapper):
        entity = "people"
        references = {"organization": ("organization_id", "organizations")}

    @registry.register(Invoice)
    class Invoices(Mapper):
        entity = "invoices"
        depends_on = ("items",)

    class Lines(ChildMapping):
        model = InvoiceLine
        path = "lines"
        parent_field = "invoice"
        fields = {"amount": "total_price.net_amount"}

    @registry.register(Item)
    class Items(Mapper):
        entity = "items"
        depends_on = ("invoices",)
        children = (Lines,)

    messages = check_registry(registry)

    assert ids(messages) == [
        "maestrano_sync.E001",
        "maestrano_sync.E002",
        "maestrano_sync.E002",
        "maestrano_sync.E003",
        "maestrano_sync.E004",
    ]
    text = " | ".join(message.msg for message in messages)
    assert "unknown Connec! entity 'widgets'" in text
    assert "crm.Organization has no field 'colour'" in text
    assert "crm.InvoiceLine has no field 'amount'" in text
    assert "'organizations'" in text and "no registered mapper" in text
    assert "invoices → items → invoices" in text or "items → invoices → items" in text


def test_extra_entities_setting_allows_an_adopters_own_entity(settings):
    settings.MAESTRANO = {"SYNC": {"EXTRA_ENTITIES": ["widgets"]}}
    registry = MapperRegistry()
    registry.register_mapper(Item, type("W", (Mapper,), {"entity": "widgets"}))

    assert check_registry(registry) == []


@pytest.mark.parametrize(
    ("tenant_field", "problem"),
    [
        ("owner", "crm.Item has no field 'owner'"),
        ("name", "crm.Item.name is not a ForeignKey"),
        ("company__status", "crm.Item: tenant path 'company__status'"),
    ],
)
def test_a_tenant_path_that_does_not_reach_the_company_is_reported(tenant_field, problem):
    registry = MapperRegistry()
    registry.register_mapper(
        Item, type("W", (Mapper,), {"entity": "items", "tenant_field": tenant_field})
    )

    messages = check_registry(registry)

    assert [message.id for message in messages] == ["maestrano_sync.E002"]
    assert problem in messages[0].msg


@isolate_apps("crm")
def test_a_tenant_key_to_a_model_that_is_not_installed_is_reported():
    # As sync.md's rule once read: "accounts.Company" (the old package) instead of the app
    # label, "maestrano_accounts.Company".
    class Stray(models.Model):
        company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE)

        class Meta:
            app_label = "crm"

    registry = MapperRegistry()
    registry.register_mapper(Stray, type("W", (Mapper,), {"entity": "items"}))

    messages = check_registry(registry)

    assert [message.id for message in messages] == ["maestrano_sync.E002"]
    assert "company points at 'accounts.Company', which is no installed model" in messages[0].msg
    assert "'maestrano_accounts.Company'" in messages[0].msg


@pytest.mark.parametrize("batch_size", [0, 501])
def test_a_batch_size_connec_would_refuse_is_reported(settings, batch_size):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"BATCH_SIZE": batch_size}}

    [warning] = [m for m in run_checks(tags=["maestrano"]) if m.id == "maestrano_sync.W002"]

    assert f"is {batch_size}" in warning.msg
    assert "1 to 500" in warning.msg


def test_a_batch_size_within_what_connec_takes_is_not_reported(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"BATCH_SIZE": 500}}

    assert [m for m in run_checks(tags=["maestrano"]) if m.id == "maestrano_sync.W002"] == []
