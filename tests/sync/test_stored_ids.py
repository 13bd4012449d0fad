"""Ids the sync stored as text (``IdMap.object_id``) are read back through
``maestrano_sync.keys``: one that no primary key can be (text for an integer key, a number
past 64 bits that SQLite's driver refuses with its whole query) names no record, and
never fails the notification, the lookup or the page that meets it."""

from __future__ import annotations

import pytest
import requests

from crm.models import Organization, Person
from maestrano_sync.keys import key_reader, local_key, local_keys
from maestrano_sync.models import IdMap, InboxEntry, SyncRecordError
from maestrano_sync.selectors import find_local_object
from tests.helpers.live_sync import deliver_notifications
from tests.helpers.users import log_in_to_company

#: Stored ids no integer primary key can be.
PAST_64_BITS = "9" * 25
NOT_A_NUMBER = "abc"


def person(company, connec_id: str, first_name: str, organization_id: str | None) -> dict:
    record = {
        "id": connec_id,
        "group_id": company.group_uid,
        "first_name": first_name,
        "updated_at": "2030-01-01T00:00:00Z",
    }
    if organization_id is not None:
        record["organization_id"] = organization_id
    return record


def test_a_stored_id_no_key_can_be_names_no_record_and_the_others_are_applied(
    platform, company, peer, client
):
    good, huge, text = (
        peer.create("organizations", {"name": name}) for name in ("Good", "Huge", "Text")
    )
    deliver_notifications()
    assert Organization.objects.filter(company=company).count() == 3
    # Rows written by hand, a restore, an adopter's model whose key changed type...
    IdMap.objects.filter(company=company, connec_id=huge["id"]).update(object_id=PAST_64_BITS)
    IdMap.objects.filter(company=company, connec_id=text["id"]).update(object_id=NOT_A_NUMBER)

    answer = requests.post(
        platform.url + "/maestrano/connec/notifications",
        json={
            "people": [
                person(company, "p-ada", "Ada", good["id"]),
                person(company, "p-bob", "Bob", huge["id"]),
                person(company, "p-cy", "Cy", text["id"]),
                person(company, "p-dee", "Dee", None),
            ]
        },
        auth=platform.auth,
        timeout=30,
    )

    assert answer.status_code == 202, answer.text
    assert list(InboxEntry.objects.values_list("status", flat=True)).count("failed") == 0
    ada = find_local_object(company=company, entity="people", connec_id="p-ada")
    assert ada.organization.name == "Good"
    dee = find_local_object(company=company, entity="people", connec_id="p-dee")
    assert (dee.first_name, dee.organization) == ("Dee", None)
    # A reference to a record whose stored id names nothing here is a reference to a record
    # unknown here: fetched from Connec! (its version is the one pulled already, stale)
    # and, still unknown, the referencing record is parked with the reason.
    assert set(Person.objects.values_list("first_name", flat=True)) == {"Ada", "Dee"}
    assert dict(SyncRecordError.objects.values_list("connec_id", "reason")) == {
        "p-bob": f"organization_id: unknown organizations reference {huge['id']!r}",
        "p-cy": f"organization_id: unknown organizations reference {text['id']!r}",
    }
    # The adopter-facing lookup: nothing found, nothing raised.
    assert find_local_object(company=company, entity="organizations", connec_id=huge["id"]) is None
    assert find_local_object(company=company, entity="organizations", connec_id=text["id"]) is None

    log_in_to_company(client, company)
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert page.text.count("unknown organizations reference") == 2  # the problems panel


BIGGEST_KEY = 2**63 - 1  # a BigAutoField's column holds it, on SQLite and PostgreSQL


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stored", "key"),
    [
        ("12", 12),
        ("-3", -3),
        (str(BIGGEST_KEY), BIGGEST_KEY),
        (str(-BIGGEST_KEY - 1), -BIGGEST_KEY - 1),
        (str(BIGGEST_KEY + 1), None),
        (str(-BIGGEST_KEY - 2), None),
        (PAST_64_BITS, None),
        (NOT_A_NUMBER, None),
        ("", None),
        (None, None),
        ("1.5", None),
    ],
)
def test_a_stored_id_is_read_back_as_the_key_it_names_or_as_none(stored, key):
    # One id, many ids of one model, and the reader kept for a page: the same answer.
    assert local_key(Organization, stored) == key
    assert key_reader(Organization)(stored) == key
    assert local_keys(Organization, [stored, "7"]) == ([key] if key is not None else []) + [7]
