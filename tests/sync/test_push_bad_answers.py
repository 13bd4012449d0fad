"""Connec! answering a push's batch in ways the protocol does not (docs/protocol.md, 'Batch':
one result per op, in order, each the op's own record): results in another order, another
record, a 200 with an error inside, results that are no result, a body that is not JSON.
Served by a stand-in Connec! on 127.0.0.1 that upserts by our external id, as Connec! does.
No local record is ever mapped to another record's Connec! id, no drain raises, and once
Connec! answers properly each record is in Connec! once, mapped to its own record."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_sync.models import OutboxEntry
from maestrano_sync.push import drain_outbox, retry_parked
from maestrano_sync.selectors import connec_id_for
from tests.helpers.stand_in_connec import Request, stand_in_connec

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = "cld-1"


class Hub:
    """Connec!'s records of the group, by our external id (the local object id), and the
    answers it gives, ``twisted`` by the test."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.twist: Callable[[list[dict[str, Any]]], Any] | None = None

    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        entity = op["url"].split("/")[4].split("?")[0]
        data = op["params"][entity]
        [ours] = data["id"]
        record = self.records.setdefault(
            ours["id"],
            {"id": [{"provider": "connec", "realm": "org-x", "id": uuid.uuid4().hex}, ours]},
        )
        record.update({key: value for key, value in data.items() if key not in ("id", "opts")})
        record.update(group_id=GROUP, updated_at="2024-05-01T10:00:00Z")
        return {"status": 201, "body": {entity: dict(record)}}

    def answer(self, request: Request) -> Any:
        assert request.path == "/batch"
        results = [self.apply(op) for op in request.body["ops"]]
        return self.twist(results) if self.twist else {"results": results}

    def connec_id(self, obj: Organization) -> str:
        return self.records[str(obj.pk)]["id"][0]["id"]


@pytest.fixture
def hub(settings):
    hub = Hub()
    with stand_in_connec(settings, hub.answer) as requests:
        settings.MAESTRANO = {
            **settings.MAESTRANO,
            "SYNC": {
                "PUSH_ON_COMMIT": False,
                "MAX_ATTEMPTS": 3,
                "PUSH_RETRY_BACKOFF": 0.0,
                "PUSH_RETRY_BACKOFF_MAX": 0.0,
            },
            "CONNEC": {"HTTP_RETRIES": 0},
        }
        hub.requests = requests
        yield hub


@pytest.fixture
def company(hub):
    return Company.objects.create(preset="maestrano", group_uid=GROUP, name="Acme")


def two_organizations(company: Company) -> list[Organization]:
    with transaction.atomic():
        return [Organization.objects.create(company=company, name=name) for name in ("A", "B")]


def assert_each_mapped_to_its_own_record(company: Company, hub: Hub, orgs: list[Organization]):
    assert len(hub.records) == len(orgs)  # upserted by our external id: never twice
    for org in orgs:
        assert connec_id_for(company=company, obj=org) == hub.connec_id(org)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}


def reversed_results(results):
    return {"results": results[::-1]}


def assert_nothing_mapped_and_all_retried(company, orgs, *, reason: str) -> None:
    for org in orgs:
        assert connec_id_for(company=company, obj=org) is None
    rows = OutboxEntry.objects.all()
    assert {(row.status, row.attempts) for row in rows} == {("pending", 1)}
    for row in rows:
        assert reason in row.last_error, row.last_error


def test_creates_answered_in_another_order_map_no_record_to_the_other_ones_id(company, hub):
    orgs = two_organizations(company)
    hub.twist = reversed_results

    result = drain_outbox(company=company)

    assert (result.done, result.retried) == (0, 2)
    assert_nothing_mapped_and_all_retried(
        company, orgs, reason="Connec! answered with another record"
    )

    hub.twist = None
    drain_outbox(company=company)

    assert_each_mapped_to_its_own_record(company, hub, orgs)


def test_updates_answered_in_another_order_change_no_link_and_sink_no_drain(company, hub):
    orgs = two_organizations(company)
    drain_outbox(company=company)
    with transaction.atomic():
        for org in orgs:
            org.name += " renamed"
            org.save()
    hub.twist = reversed_results

    result = drain_outbox(company=company)

    assert (result.done, result.retried) == (0, 2)
    for org in orgs:
        assert connec_id_for(company=company, obj=org) == hub.connec_id(org)

    hub.twist = None
    drain_outbox(company=company)

    assert_each_mapped_to_its_own_record(company, hub, orgs)
    assert sorted(record["name"] for record in hub.records.values()) == ["A renamed", "B renamed"]


def test_an_update_answered_with_a_record_it_did_not_address_changes_no_link(company, hub):
    [org, _] = orgs = two_organizations(company)
    drain_outbox(company=company)
    org.name = "A renamed"
    org.save()

    def another_record(results):
        [result] = results
        other = {**result["body"]["organizations"], "id": uuid.uuid4().hex}
        return {"results": [{"status": 200, "body": {"organizations": other}}]}

    hub.twist = another_record
    drain_outbox(company=company)

    assert connec_id_for(company=company, obj=org) == hub.connec_id(org)
    [row] = OutboxEntry.objects.filter(status="pending")
    assert "Connec! answered with another record" in row.last_error

    hub.twist = None
    drain_outbox(company=company)

    assert_each_mapped_to_its_own_record(company, hub, orgs)


UNREADABLE_RESULTS = {
    "a 200 with an error inside": (
        lambda results: {
            "results": [{"status": 200, "body": {"errors": [{"detail": "Busy"}]}}] * len(results)
        },
        "HTTP 200 without the record: Busy",
    ),
    "results that are text": (
        lambda results: {"results": ["created"] * len(results)},
        "Connec! answered no HTTP status for it: 'created'",
    ),
    "a status that is text": (
        lambda results: {"results": [{**result, "status": "created"} for result in results]},
        "Connec! answered no HTTP status for it",
    ),
    "a status that is null": (
        lambda results: {"results": [{**result, "status": None} for result in results]},
        "Connec! answered no HTTP status for it",
    ),
    "no status": (
        lambda results: {"results": [{"body": result["body"]} for result in results]},
        "Connec! answered no HTTP status for it",
    ),
}


@pytest.mark.parametrize("answer", list(UNREADABLE_RESULTS))
def test_a_result_that_says_nothing_usable_is_tried_again_and_the_drain_goes_on(
    company, hub, answer
):
    twist, reason = UNREADABLE_RESULTS[answer]
    orgs = two_organizations(company)
    hub.twist = twist

    result = drain_outbox(company=company)

    assert (result.done, result.retried) == (0, 2)
    assert_nothing_mapped_and_all_retried(company, orgs, reason=reason)

    hub.twist = None
    drain_outbox(company=company)

    assert_each_mapped_to_its_own_record(company, hub, orgs)


@pytest.mark.parametrize(
    "body", ["<html>Bad gateway</html>", {"errors": [{"detail": "Busy"}]}, {"results": {}}]
)
def test_a_batch_answer_that_is_no_results_list_parks_the_rows_and_a_retry_pushes_them_once(
    company, hub, body
):
    orgs = two_organizations(company)
    hub.twist = lambda results: body

    result = drain_outbox(company=company)

    assert (result.done, result.parked) == (0, 2)
    for row in OutboxEntry.objects.all():
        assert row.status == "parked"
        assert row.last_error == "batch failed: Connec! batch answer has no results list"

    hub.twist = None
    retry_parked(queryset=OutboxEntry.objects.all())
    drain_outbox(company=company)

    assert_each_mapped_to_its_own_record(company, hub, orgs)
