"""The import's entry points: the company_created signal (Celery, on commit) and the command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from crm.models import Invoice, Organization, Person
from maestrano_accounts.models import Company
from maestrano_accounts.signals import company_created
from maestrano_integration.conf import get_preset
from maestrano_sync.models import SyncRun


def create_company_and_signal(group_uid: str) -> Company:
    """What SSO does on a first login: create the company, signal after commit."""
    with transaction.atomic():
        company = Company.objects.create(preset="maestrano", group_uid=group_uid, name="Acme")
        transaction.on_commit(
            lambda: company_created.send(
                sender=Company, company=company, preset=get_preset("maestrano")
            )
        )
        # Inside the transaction nothing may be imported yet.
        assert not SyncRun.objects.exists()
    return company


def test_company_created_imports_the_group_data_after_commit(sandbox_group):
    sandbox_group.seed(organizations=2, people=3, items=1, invoices=1)

    company = create_company_and_signal(sandbox_group.uid)

    run = SyncRun.objects.get(company=company)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert Person.objects.filter(company=company).count() == 3
    assert Invoice.objects.get(company=company).lines.count() == 2


def test_import_on_company_created_can_be_turned_off(sandbox_group, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "IMPORT_ON_COMPANY_CREATED": False},
    }
    sandbox_group.seed(organizations=1, people=0, items=0, invoices=0)

    create_company_and_signal(sandbox_group.uid)

    assert not SyncRun.objects.exists()
    assert not Organization.objects.exists()


def test_command_imports_one_entity_with_progress(sandbox_group, company):
    sandbox_group.seed(organizations=4, people=2, items=0, invoices=0)
    out, err = StringIO(), StringIO()

    call_command(
        "maestrano_import",
        "--company",
        sandbox_group.uid,
        "--entity",
        "organizations",
        stdout=out,
        stderr=err,
    )

    assert (
        "organizations: 4 created, 0 updated, 0 unchanged, 0 deleted in Connec!, 0 failed"
        in out.getvalue()
    )
    assert "succeeded" in out.getvalue()
    assert "organizations" in err.getvalue()  # the tqdm bar
    assert Organization.objects.filter(company=company).count() == 4
    assert not Person.objects.exists()


def test_command_never_imports_a_record_connec_marks_deleted(sandbox_group, company):
    sandbox_group.create("organizations", {"name": "Gone Co", "status": "INACTIVE"})
    sandbox_group.create("organizations", {"name": "Live Co"})
    out = StringIO()

    call_command("maestrano_import", "--company", sandbox_group.uid, stdout=out, stderr=StringIO())

    assert (
        "organizations: 1 created, 0 updated, 0 unchanged, 1 deleted in Connec!, 0 failed"
        in out.getvalue()
    )
    assert list(Organization.objects.filter(company=company).values_list("name", flat=True)) == [
        "Live Co"
    ]


def test_command_restart_starts_a_new_run(sandbox_group, company):
    sandbox_group.seed(organizations=1, people=0, items=0, invoices=0)
    call_command(
        "maestrano_import", "--company", sandbox_group.uid, stdout=StringIO(), stderr=StringIO()
    )

    call_command(
        "maestrano_import",
        "--company",
        sandbox_group.uid,
        "--restart",
        stdout=StringIO(),
        stderr=StringIO(),
    )

    assert SyncRun.objects.filter(company=company).count() == 2
    assert Organization.objects.filter(company=company).count() == 1


def test_command_refuses_an_unknown_company_or_entity(sandbox_group, company):
    with pytest.raises(CommandError, match="No company"):
        call_command("maestrano_import", "--company", "cld-unknown", stdout=StringIO())
    with pytest.raises(CommandError, match="No import-enabled mapper for widgets"):
        call_command(
            "maestrano_import",
            "--company",
            sandbox_group.uid,
            "--entity",
            "widgets",
            stdout=StringIO(),
        )
    with pytest.raises(CommandError, match="No Maestrano preset"):
        call_command(
            "maestrano_import",
            "--company",
            sandbox_group.uid,
            "--preset",
            "nope",
            stdout=StringIO(),
        )
