"""A Connec! id is one segment of a URL path, never a path of its own.

Our credentials open every group of the app at the hub, so an id taken into a URL as it
is (``../../cld-2/people/<id>``, a reference another application of the group wrote)
would read, and write, another group's records. The client puts every id in one path
segment (``maestrano_integration.http.path_segment``), and the sync refuses an id with a
``/`` as no Connec! id (``maestrano_sync.values.connec_id_problem``): the record holding
it is parked with its reason, nothing is fetched.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from crm.models import Invoice, Person
from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecClient, ConnecNotFoundError
from maestrano_sync.models import IdMap, SyncRecordError
from tests.sync.conftest import SandboxGroup, make_group


@pytest.fixture
def victim(platform, live_sync):
    """Another group of the app, with a record of its own (our app serves both groups)."""
    group = SandboxGroup(
        platform=platform, group=make_group(platform, name="Victim"), app=platform.app
    )
    Company.objects.create(preset="maestrano", group_uid=group.uid, name="Victim Co")
    secret = group.create(
        "people",
        {"first_name": "Victim", "last_name": "Secret", "email": {"address": "ceo@victim.test"}},
    )
    return group, secret


def notify(platform, payload) -> requests.Response:
    return requests.post(
        f"{platform.url}/maestrano/connec/notifications",
        json=payload,
        auth=platform.auth,
        timeout=30,
    )


def invoice_of(company, **fields) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "group_id": company.group_uid,
        "channel_id": "org-x",
        "resource_type": "invoices",
        "type": "CUSTOMER",
        "status": "DRAFT",
        "transaction_number": "INV-1",
        "updated_at": "2030-01-01T00:00:01Z",
        **fields,
    }


def test_a_reference_naming_another_groups_record_is_parked_not_fetched(platform, company, victim):
    group, secret = victim
    reference = f"../../{group.uid}/people/{secret['id']}"

    answer = notify(platform, {"invoices": [invoice_of(company, person_id=reference)]})

    assert answer.status_code == 202
    assert not Person.objects.filter(company=company).exists()  # the victim's person
    assert not Invoice.objects.filter(company=company).exists()
    (error,) = SyncRecordError.objects.filter(company=company)
    assert error.reason == "person_id: not a Connec! id: not one URL path segment"


@pytest.mark.parametrize("record_id", ["../../cld-2/people/1", "a/b", "a\\b", ".", ".."])
def test_a_notified_record_whose_id_is_no_path_segment_is_parked(platform, company, record_id):
    record = {
        "id": record_id,
        "group_id": company.group_uid,
        "first_name": "Eve",
        "updated_at": "2030-01-01T00:00:01Z",
    }

    answer = notify(platform, {"people": [record]})

    assert answer.status_code == 202
    assert answer.json()["parked"] == 1
    assert not IdMap.objects.exists()
    assert not Person.objects.exists()


def test_the_client_keeps_an_id_in_one_path_segment(platform, company, victim):
    group, secret = victim

    with (
        ConnecClient(group_id=company.group_uid) as client,
        pytest.raises(ConnecNotFoundError),
    ):
        client.retrieve("people", f"../../{group.uid}/people/{secret['id']}")

    with ConnecClient(group_id=group.uid) as client:  # the record is there, for its group
        assert client.retrieve("people", secret["id"])["first_name"] == "Victim"


@pytest.mark.parametrize("record_id", ["", ".", ".."])
def test_the_client_refuses_an_id_that_names_no_record(platform, company, record_id):
    with ConnecClient(group_id=company.group_uid) as client, pytest.raises(ValueError):
        client.retrieve("people", record_id)
