"""What operators see: ``sync_status`` and ``manage.py maestrano_sync_status``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm.models import Organization
from maestrano_sync.push import drain_outbox
from maestrano_sync.selectors import sync_status


def test_status_counts_mapped_records_queue_depth_and_parked_errors(company, manual_drain):
    Organization.objects.create(company=company, name="Good")
    drain_outbox(company=company)
    Organization.objects.create(company=company, name="Bad", email="not-an-email")
    drain_outbox(company=company)
    Organization.objects.create(company=company, name="Waiting")

    status = sync_status(company=company)

    organizations = status["organizations"]
    assert (organizations["mapped"], organizations["outbox_pending"]) == (1, 1)
    assert organizations["outbox_parked"] == 1
    assert "not-an-email" in organizations["last_error"]
    assert organizations["last_push_at"] is not None
    assert status["people"]["mapped"] == 0
    assert status["*"]["inbox_pending"] == 0

    out = StringIO()
    call_command("maestrano_sync_status", "--company", company.group_uid, stdout=out)
    text = out.getvalue()
    assert company.group_uid in text
    assert "organizations" in text and "parked" in text
    assert "not-an-email" in text


def test_status_command_refuses_an_unknown_company(db):
    with pytest.raises(CommandError, match="cld-nope"):
        call_command("maestrano_sync_status", "--company", "cld-nope")
