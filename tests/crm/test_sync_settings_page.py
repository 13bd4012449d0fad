"""The example application's sync settings page (Admins only) and the Django admin of the
settings: both save through ``maestrano_sync.company_settings``, so both are checked and
recorded."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from crm.mappers import ItemMapper
from crm.models import Person
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY
from maestrano_sync.company_settings import policy_for
from maestrano_sync.mappers import EXPORT_ONLY
from maestrano_sync.models import CompanySyncSettings, OutboxEntry, SyncSettingsChange

User = get_user_model()

pytestmark = pytest.mark.django_db

URL = "/sync/settings/"


@pytest.fixture(autouse=True)
def no_connec_traffic(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"PUSH_ON_COMMIT": False}}


@pytest.fixture
def companies():
    ours = Company.objects.create(preset="maestrano", group_uid="cld-ours", name="Ours Ltd")
    theirs = Company.objects.create(preset="maestrano", group_uid="cld-theirs", name="Theirs Inc")
    return ours, theirs


def logged_in(client, company, role):
    user = User.objects.create_user(f"user-{role.lower().replace(' ', '-')}")
    Membership.objects.create(user=user, company=company, role=role)
    client.force_login(user)
    session = client.session
    session[CURRENT_COMPANY_KEY] = company.pk
    session.save()
    return client, user


def form_data(**overrides):
    data = {
        "enabled": "on",
        "import_since": "",
        "direction_organizations": "both",
        "direction_people": "both",
        "direction_items": "both",
        "direction_invoices": "both",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize("role", ["Member", "Power User"])
def test_only_admins_see_or_change_the_settings(client, companies, role):
    app, _ = logged_in(client, companies[0], role)

    assert app.get(URL).status_code == 403
    assert app.post(URL, form_data(enabled=None)).status_code == 403
    assert policy_for(company_id=companies[0].pk).enabled
    assert not SyncSettingsChange.objects.exists()


def test_an_admin_changes_the_settings_of_the_current_company_only_and_sees_the_history(
    client, companies
):
    ours, theirs = companies
    app, admin = logged_in(client, ours, "Admin")
    admin.first_name, admin.last_name = "Alice", "Admin"
    admin.save()
    page = app.get(URL)
    assert page.status_code == 200
    assert 'name="direction_people"' in page.content.decode()

    response = app.post(
        URL, form_data(enabled=None, direction_people="import", import_since="2025-01-31")
    )

    assert response.status_code == 302
    policy = policy_for(company_id=ours.pk)
    assert (policy.enabled, policy.direction("people"), str(policy.import_since)) == (
        False,
        "import",
        "2025-01-31",
    )
    assert policy_for(company_id=theirs.pk).enabled  # the other tenant is untouched
    change = SyncSettingsChange.objects.get()
    assert (change.company, change.changed_by) == (ours, admin)
    history = app.get(URL).content.decode()
    # In words, as the form names them.
    assert "People: Both ways → Import only (Connec! → this app)" in history
    assert "Sync: on → off" in history
    assert "Alice Admin" in history  # the person, not their login name
    assert "First import from: — → 2025-01-31" in history

    # Effects are immediate: with the sync off, a local change waits in the outbox.
    Person.objects.create(company=ours, first_name="Ada")
    assert OutboxEntry.objects.get().status == "pending"

    assert (
        app.post(
            URL, form_data(enabled=None, direction_people="import", import_since="2025-01-31")
        ).status_code
        == 302
    )
    assert SyncSettingsChange.objects.count() == 1  # nothing changed, nothing recorded


def test_only_the_directions_a_mapper_allows_are_offered_and_accepted(
    client, companies, monkeypatch
):
    monkeypatch.setattr(ItemMapper, "directions", EXPORT_ONLY)
    app, _ = logged_in(client, companies[0], "Admin")

    page = app.get(URL).context["form"]
    assert [value for value, _ in page.fields["direction_items"].choices] == ["export", "off"]

    response = app.post(URL, form_data(direction_items="both"))

    assert response.status_code == 400
    assert "direction_items" in response.context["form"].errors
    assert not SyncSettingsChange.objects.exists()


def test_the_dashboard_links_admins_to_the_settings(client, companies):
    app, _ = logged_in(client, companies[0], "Admin")

    assert (
        reverse("crm:sync-settings")
        in app.get(reverse("maestrano_accounts:dashboard")).content.decode()
    )


def test_the_django_admin_saves_through_the_service_and_records_who(admin_client, companies):
    ours, _ = companies
    add = reverse("admin:maestrano_sync_companysyncsettings_add")

    refused = admin_client.post(
        add, {"company": ours.pk, "enabled": "on", "directions": '{"people": "sideways"}'}
    )
    assert refused.status_code == 200
    assert "not possible" in refused.content.decode()

    saved = admin_client.post(
        add, {"company": ours.pk, "directions": '{"people": "export"}', "import_since": ""}
    )

    assert saved.status_code == 302
    settings_row = CompanySyncSettings.objects.get()
    assert (settings_row.enabled, settings_row.directions) == (False, {"people": "export"})
    change = SyncSettingsChange.objects.get()
    assert change.changed_by.is_superuser
    assert change.changes == {"enabled": [True, False], "direction.people": ["both", "export"]}
