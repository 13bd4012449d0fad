"""Local values and keys the push must handle without noise and without sinking a batch:
blank values (docs/sync.md, 'Push: the transactional outbox'), local keys that are no URL
path segment (docs/protocol.md, 'External ids'). Read back from the sandbox's Connec! API
over HTTP."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest
from django.db import transaction

from crm.models import Organization
from maestrano_integration.http import REASON_MAX_CHARS
from maestrano_sync.models import IdMap, OutboxEntry
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import connec_id_for
from maestrano_sync.status import record_status
from tests.helpers.live_sync import connec_id, our_entry, wait_until
from tests.helpers.loopback import serving
from tests.shapes.mappers import shape_mappers
from tests.shapes.models import Firm, Member, Workspace

from .conftest import connec_answers_lost


def make_org(company, **fields):
    return Organization.objects.create(company=company, **{"name": "Acme Pty", **fields})


# --- blank values -------------------------------------------------------------------------


def test_a_blank_phone_is_left_out_of_a_new_record_and_a_cleared_one_is_cleared(
    platform, company, hub
):
    """A phone never set sends nothing (the new record has no ``phone``); a phone cleared
    here after Connec! had it is cleared there."""
    org = make_org(company, phone="", email="hello@acme.test")

    record = hub.get("organizations", connec_id_for(company=company, obj=org))
    assert "phone" not in record
    assert "address" not in record  # no city, no line, no country: no address at all
    assert record["email"] == {"address": "hello@acme.test"}

    org.phone = "+61 2 1234 5678"
    org.save()
    remote_id = connec_id_for(company=company, obj=org)
    assert hub.get("organizations", remote_id)["phone"] == {"landline": "+61 2 1234 5678"}

    org.phone = ""
    org.save()

    record = hub.get("organizations", remote_id)
    assert not (record.get("phone") or {}).get("landline")
    assert record["email"] == {"address": "hello@acme.test"}
    assert record_status(company=company, obj=org).state == "synced"


def test_a_phone_cleared_while_a_first_push_went_unanswered_is_cleared_in_connec(
    platform, settings, company, hub, manual_drain
):
    """The retried first push is a create again, which Connec! applies to the record the
    lost push made (our external id): the phone it left out as blank is cleared there by
    an update that follows, in the same drain."""
    org = make_org(company, phone="+61 2 1234 5678")
    with connec_answers_lost(platform, settings):
        drain_outbox(company=company)
    [applied] = wait_until(lambda: hub.list("organizations"))
    assert applied["phone"] == {"landline": "+61 2 1234 5678"}
    org.phone = ""
    org.save()

    result = drain_outbox(company=company)

    assert (result.requests, result.parked) == (2, 0)  # the create, then the update
    [record] = hub.list("organizations")
    assert connec_id(record) == connec_id(applied)
    assert not (record.get("phone") or {}).get("landline")
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}
    assert IdMap.objects.filter(company=company).count() == 1
    # Both sides agree now: saving again sends nothing.
    org.save()
    assert drain_outbox(company=company).requests == 0


def test_a_first_push_merged_into_a_record_with_a_phone_clears_it(
    platform, company, hub, held_sync
):
    """Smart merging (the name, for organizations) updates another app's record with our
    values: a phone blank here is blank there too, as the local record says (the create,
    then the update clearing it)."""
    other = hub.create("organizations", {"name": "Acme Pty", "phone": {"landline": "555"}})
    org = make_org(company)

    result = drain_outbox(company=company)

    assert (result.requests, result.parked) == (2, 0)

    assert connec_id_for(company=company, obj=org) == other["id"]
    assert not (hub.get("organizations", other["id"]).get("phone") or {}).get("landline")
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"done"}


# --- local keys that are no URL path segment ----------------------------------------------


@pytest.fixture
def workspace(company, platform):
    with shape_mappers():
        yield Workspace.objects.create(name="Acme", company=company)


@pytest.mark.parametrize("bad_key", [".", "..", ""])
def test_a_local_key_that_is_no_url_segment_is_parked_and_the_batch_goes_on(
    platform, company, workspace, hub, manual_drain, bad_key
):
    with transaction.atomic():
        good = [
            Firm.objects.create(workspace=workspace, code=f"F-{n}", name=f"Good {n}")
            for n in (1, 2)
        ]
        bad = Firm.objects.create(workspace=workspace, code=bad_key, name="Bad")
        member = Member.objects.create(workspace=workspace, first_name="Works at Bad", firm=bad)

    result = drain_outbox(company=company)

    assert (result.done, result.parked) == (2, 2)
    assert sorted(r["name"] for r in hub.list("organizations")) == ["Good 1", "Good 2"]
    for firm in good:
        [record] = [r for r in hub.list("organizations") if r["name"] == firm.name]
        assert our_entry(record, provider=platform.api_id, realm=company.group_uid)["id"] == firm.pk
    assert hub.list("people") == []
    parked = OutboxEntry.objects.get(status="parked", entity="organizations")
    assert parked.object_id == bad_key
    assert parked.last_error == (
        f"cannot push the record: the local key {bad_key!r} cannot be our id in Connec!: "
        "not one URL path segment"
    )
    assert record_status(company=company, obj=bad).state == "parked"
    # A record referencing it is parked with the reason, not retried until it gives up.
    referencing = OutboxEntry.objects.get(status="parked", entity="people")
    assert referencing.last_error.startswith("cannot map the record: its organizations reference")
    assert record_status(company=company, obj=member).state == "parked"

    # Its delete is parked too (nothing in Connec! to address by that key), never raised.
    bad.delete()
    result = drain_outbox(company=company)

    assert result.parked == 1
    assert OutboxEntry.objects.filter(status="parked", object_id=bad_key).count() == 2
    assert sorted(r["name"] for r in hub.list("organizations")) == ["Good 1", "Good 2"]


# --- what Connec! says of a refusal -----------------------------------------------------


class _RefusingHub(BaseHTTPRequestHandler):
    """A Connec! that refuses every op of a batch with a long, multi-line reason."""

    said = "email.address is not an email address\r\n" + "  at hub frame\n" * 2000

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        refusal = {"errors": [{"status": "422", "title": "Invalid", "detail": self.said}]}
        answer = json.dumps({"results": [{"status": 422, "body": refusal} for _ in body["ops"]]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args) -> None:
        pass


def test_a_refusal_connec_explains_at_length_is_kept_as_one_short_line(
    company, settings, manual_drain
):
    """The row shows what Connec! said by the rule of every reason a person reads
    (``http.document_reason``): one line, bounded, never the whole body."""
    org = make_org(company, email="hello@acme.test")
    with serving(_RefusingHub) as url:
        presets = settings.MAESTRANO["PRESETS"]
        settings.MAESTRANO = {
            **settings.MAESTRANO,
            "PRESETS": {
                **presets,
                "maestrano": {**presets["maestrano"], "connec": {"host": url, "timeout": 5}},
            },
        }
        result = drain_outbox(company=company)

    assert result.parked == 1
    parked = OutboxEntry.objects.get(object_id=str(org.pk))
    assert parked.status == "parked"
    assert parked.last_error.startswith("HTTP 422: email.address is not an email address at hub")
    assert "\n" not in parked.last_error and "\r" not in parked.last_error
    assert len(parked.last_error) <= len("HTTP 422: ") + REASON_MAX_CHARS
    assert record_status(company=company, obj=org).state == "parked"
