"""Sandbox pages of the Connec! hub: browse, write as another app, deliveries, faults, admin."""

from __future__ import annotations

import json

import pytest

from maestrano_sandbox.models import ConnecRecord, FaultConfig, NotificationDelivery
from tests.helpers.html import dangling_references, described

pytestmark = pytest.mark.django_db(databases="__all__")


def test_home_lists_groups_with_their_record_counts(client, hub):
    hub.post("/cld-1/people", {"people": {"first_name": "Ada"}})

    response = client.get("/sandbox/connec/")

    assert response.status_code == 200
    assert b"cld-1" in response.content


def test_creating_a_record_as_another_app_notifies_every_app_of_the_group(client, hub_group):
    response = client.post(
        "/sandbox/connec/groups/cld-1/people/",
        {"fields_json": json.dumps({"first_name": "Ada"}), "write_as": ""},
    )

    record = ConnecRecord.objects.get(entity="people")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/people/{record.uid}/")
    assert record.written_by is None
    notified = set(NotificationDelivery.objects.values_list("app__api_id", flat=True))
    assert notified == {"app-a", "app-b"}


def test_writing_as_one_app_of_the_group_does_not_notify_it(client, hub_group):
    client.post(
        "/sandbox/connec/groups/cld-1/items/",
        {"fields_json": json.dumps({"name": "W"}), "write_as": "app-a"},
    )

    assert list(NotificationDelivery.objects.values_list("app__api_id", flat=True)) == ["app-b"]


def test_an_invalid_record_shows_the_hub_errors(client, hub_group):
    response = client.post(
        "/sandbox/connec/groups/cld-1/people/",
        {"fields_json": json.dumps({"job_title": "no name"}), "write_as": ""},
    )

    assert response.status_code == 200
    assert b"can&#x27;t be blank" in response.content
    assert not ConnecRecord.objects.exists()


def test_editing_a_record_merges_the_fields(client, hub):
    created = hub.post("/cld-1/people", {"people": {"first_name": "Ada"}}).json()["people"]
    url = f"/sandbox/connec/groups/cld-1/people/{created['id']}/"

    assert client.get(url).status_code == 200
    client.post(url, {"fields_json": json.dumps({"last_name": "L"}), "write_as": ""})

    data = hub.get(f"/cld-1/people/{created['id']}").json()["people"]
    assert (data["first_name"], data["last_name"]) == ("Ada", "L")


def test_deliveries_page_lists_the_log(client, hub):
    hub.post("/cld-1/people", {"people": {"first_name": "Ada"}})

    response = client.get("/sandbox/connec/deliveries/")

    assert response.status_code == 200
    assert b"app-b" in response.content


def test_fault_settings_are_saved_from_the_page(client, hub_app):
    response = client.post(
        "/sandbox/connec/faults/",
        {
            "app": "app-a",
            "app-a-enabled": "on",
            "app-a-scope": "connec",
            "app-a-error_rate": "0.2",
            "app-a-rate_limit_rate": "0.1",
            "app-a-retry_after": "3",
            "app-a-latency_ms": "0",
            "app-a-drop_rate": "0",
            "app-a-seed": "5",
        },
    )

    assert response.status_code == 302
    config = FaultConfig.objects.get(app=hub_app)
    assert (config.error_rate, config.retry_after, config.seed) == (0.2, 3, 5)


def test_fault_rates_over_one_are_refused_by_the_page(client, hub_app):
    client.post(
        "/sandbox/connec/faults/",
        {
            "app": "app-a",
            "app-a-scope": "all",
            "app-a-error_rate": "0.9",
            "app-a-drop_rate": "0.5",
            "app-a-rate_limit_rate": "0",
            "app-a-retry_after": "1",
            "app-a-latency_ms": "0",
        },
    )

    assert not FaultConfig.objects.exists()


def test_saving_a_record_in_the_admin_validates_and_notifies(admin_client, hub_group):
    response = admin_client.post(
        "/admin/maestrano_sandbox/connecrecord/add/",
        {
            "group": hub_group.pk,
            "entity": "people",
            "data": json.dumps({"first_name": "Ada"}),
            "external_ids-TOTAL_FORMS": "0",
            "external_ids-INITIAL_FORMS": "0",
        },
    )
    invalid = admin_client.post(
        "/admin/maestrano_sandbox/connecrecord/add/",
        {
            "group": hub_group.pk,
            "entity": "people",
            "data": json.dumps({"status": "GONE"}),
            "external_ids-TOTAL_FORMS": "0",
            "external_ids-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    assert invalid.status_code == 200
    assert ConnecRecord.objects.count() == 1
    assert NotificationDelivery.objects.count() == 2


def test_the_faults_page_says_faults_set_only_when_they_change_something(client, hub_app):
    def save(**rates):
        values = {"error_rate": "0", "rate_limit_rate": "0", "drop_rate": "0", "latency_ms": "0"}
        values.update(rates)
        client.post(
            "/sandbox/connec/faults/",
            {
                "app": "app-a",
                "app-a-enabled": "on",
                "app-a-scope": "all",
                "app-a-retry_after": "1",
                **{f"app-a-{name}": value for name, value in values.items()},
            },
        )
        return client.get("/sandbox/connec/faults/").content.decode()

    assert "faults set" in save(error_rate="0.5")
    page = save()
    assert "faults set" not in page and "no faults (saved" in page
    assert "faults set" in save(latency_ms="20")
    # A refused form (rates over 1 in all) shows what is still in force, not what was posted.
    page = save(latency_ms="0", error_rate="0.9", drop_rate="0.5")
    assert "must not exceed 1" in page or "faults set" in page
    assert "faults set" in client.get("/sandbox/connec/faults/").content.decode()


FAULT_FIELDS = [
    "enabled",
    "scope",
    "error_rate",
    "error_status",
    "rate_limit_rate",
    "retry_after",
    "latency_ms",
    "drop_rate",
    "gateway_timeout_rate",
    "seed",
]


def test_every_fault_setting_says_what_it_does_under_an_id_its_field_names(client, hub_app):
    page = described(client.get("/sandbox/connec/faults/").content.decode())

    for name in FAULT_FIELDS:
        [reference] = page.references[f"app-a-{name}"]
        assert reference in page.ids, name
        assert len(page.texts[reference].split()) >= 6, (name, page.texts[reference])
    assert (
        "Share of calls that fail with a server error" in page.texts["id_app-a-error_rate_helptext"]
    )


def test_a_refused_fault_form_names_existing_help_texts_and_errors(client, hub_app):
    response = client.post(
        "/sandbox/connec/faults/",
        {
            "app": "app-a",
            "app-a-scope": "everything",
            "app-a-error_rate": "2",
            "app-a-rate_limit_rate": "0",
            "app-a-retry_after": "1",
            "app-a-latency_ms": "-1",
            "app-a-drop_rate": "0",
        },
    )

    page = described(response.content.decode())
    assert response.status_code == 200
    assert page.references["app-a-scope"] == ["id_app-a-scope_helptext", "id_app-a-scope_error"]
    assert "Select a valid choice" in page.texts["id_app-a-scope_error"]
    assert "id_app-a-latency_ms_error" in page.references["app-a-latency_ms"]
    assert dangling_references(response.content.decode()) == {}


@pytest.mark.parametrize("path", ["/sandbox/", "/sandbox/apps/app-a", "/sandbox/groups/cld-1"])
def test_the_other_sandbox_forms_name_only_existing_ids(client, hub_group, path):
    assert dangling_references(client.get(path).content.decode()) == {}
