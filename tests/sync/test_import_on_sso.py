"""The first SSO of a group that has Connec! data ends with the data imported
(docs/protocol.md, 'Integration duties')."""

from __future__ import annotations

from crm.models import Invoice, Item, Organization, Person
from maestrano_accounts.models import Company
from maestrano_sync.models import SyncRun
from maestrano_sync.selectors import connec_id_for
from tests.helpers.sso_flow import login


def test_first_sso_of_a_group_with_data_imports_it(platform, sandbox_group):
    sandbox_group.seed(organizations=3, people=4, items=2, invoices=2)

    answer = login(
        platform,
        platform.session(),
        user_uid="usr-importer",
        group_uid=sandbox_group.uid,
        group_name="Acme",
    )

    assert answer.status_code == 302, answer.text[:500]
    company = Company.objects.get(group_uid=sandbox_group.uid)
    run = SyncRun.objects.get(company=company)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert Organization.objects.filter(company=company).count() == 3
    assert Person.objects.filter(company=company).count() == 4
    assert Item.objects.filter(company=company).count() == 2
    invoice = Invoice.objects.filter(company=company).first()
    assert invoice.lines.count() == 2
    person = Person.objects.filter(company=company, first_name="First3").get()
    assert (
        connec_id_for(company=company, obj=person.organization)
        == sandbox_group.ids["organizations"][0]
    )


def test_a_second_login_does_not_import_again(platform, sandbox_group):
    sandbox_group.seed(organizations=1, people=1, items=0, invoices=0)
    login(platform, platform.session(), user_uid="usr-a", group_uid=sandbox_group.uid)

    login(platform, platform.session(), user_uid="usr-b", group_uid=sandbox_group.uid)

    assert SyncRun.objects.count() == 1
    assert Person.objects.count() == 1
