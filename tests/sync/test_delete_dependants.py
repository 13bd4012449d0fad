"""A local delete that empties the references of other synced records (``on_delete=SET_NULL``:
Django's queryset ``UPDATE``, no ``post_save``) pushes those records without the reference."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Invoice, Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.models import OutboxEntry
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for
from maestrano_sync.status import record_status


def pending_rows(company) -> list[tuple[str, str, str]]:
    return sorted(
        OutboxEntry.objects.filter(company=company, status=OutboxEntry.Status.PENDING).values_list(
            "entity", "object_id", "operation"
        )
    )


def test_a_deleted_organization_pushes_the_people_it_employed_without_it(
    company, hub, manual_drain
):
    org = Organization.objects.create(company=company, name="Globex")
    ada = Person.objects.create(company=company, first_name="Ada", organization=org)
    bob = Person.objects.create(company=company, first_name="Bob", organization=org)
    eve = Person.objects.create(company=company, first_name="Eve")  # works elsewhere
    drain_outbox(company=company)
    org_id = connec_id_for(company=company, obj=org)
    people_ids = [connec_id_for(company=company, obj=p) for p in (ada, bob)]
    assert hub.get("people", people_ids[0])["organization_id"]
    org_pk = org.pk

    org.delete()

    # Sorted as pending_rows sorts them: object ids are text ("100" before "99").
    assert pending_rows(company) == sorted(
        [
            ("organizations", str(org_pk), "delete"),
            ("people", str(ada.pk), "upsert"),
            ("people", str(bob.pk), "upsert"),
        ]
    )
    assert drain_outbox(company=company).done == 3
    for person, person_id in zip((ada, bob), people_ids, strict=True):
        assert not hub.get("people", person_id).get("organization_id")
        assert record_status(company=company, obj=person).state == "synced"
    assert hub.get("organizations", org_id)["status"] == "INACTIVE"
    assert Person.objects.get(pk=eve.pk).organization_id is None


def test_a_deleted_person_pushes_the_invoices_that_named_it_without_it(company, hub, manual_drain):
    ada = Person.objects.create(company=company, first_name="Ada")
    invoice = Invoice.objects.create(company=company, number="INV-1", person=ada)
    drain_outbox(company=company)
    invoice_id = connec_id_for(company=company, obj=invoice)
    assert hub.get("invoices", invoice_id)["person_id"]

    Person.objects.filter(pk=ada.pk).delete()  # a queryset delete: the same rule

    assert ("invoices", str(invoice.pk), "upsert") in pending_rows(company)
    drain_outbox(company=company)
    assert not hub.get("invoices", invoice_id).get("person_id")


@pytest.mark.django_db
def test_the_dependants_are_listed_without_loading_them_whatever_their_number():
    def queries_of_a_delete(people: int) -> list[str]:
        company = Company.objects.create(
            preset="maestrano", group_uid=f"cld-dep-{people}", name="Dep"
        )
        org = Organization.objects.create(company=company, name="Globex")
        for n in range(people):
            Person.objects.create(company=company, first_name=f"P{n}", organization=org)
        with CaptureQueriesContext(connection) as captured:
            org.delete()
        upserts = OutboxEntry.objects.filter(company=company, entity="people")
        assert upserts.count() == 2 * people  # each person's creation, then its upsert
        return [q["sql"].split()[0].upper() for q in captured.captured_queries]

    assert queries_of_a_delete(1) == queries_of_a_delete(20)
