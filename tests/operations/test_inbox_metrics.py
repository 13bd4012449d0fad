"""The inbox's gauges: held notifications (an import an Admin turned off) are counted, but
never age into the "inbox stuck" alert (``maestrano_inbox_oldest_age_seconds``), which is
about notifications waiting for a worker."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_sync.models import InboxEntry

from .conftest import scrape

pytestmark = pytest.mark.django_db


def _company(group_uid: str) -> Company:
    return Company.objects.create(
        preset="maestrano",
        group_uid=group_uid,
        name=group_uid,
        free_trial_end_at=timezone.now(),
        has_credit_card=True,
    )


def _entry(company: Company, *, status: str, age: dt.timedelta) -> InboxEntry:
    entry = InboxEntry.objects.create(
        preset="maestrano", company=company, payload={"people": []}, status=status
    )
    InboxEntry.objects.filter(pk=entry.pk).update(received_at=timezone.now() - age)
    return entry


def test_held_notifications_are_counted_but_never_make_the_inbox_look_stuck(client, metrics_auth):
    company = _company("cld-held")
    _entry(company, status=InboxEntry.Status.HELD, age=dt.timedelta(days=3))

    samples = scrape(client)
    assert samples.value("maestrano_inbox_entries", preset="maestrano", status="held") == 1
    assert samples.series("maestrano_inbox_oldest_age_seconds") == []

    _entry(company, status=InboxEntry.Status.PENDING, age=dt.timedelta(minutes=2))

    age = scrape(client).value("maestrano_inbox_oldest_age_seconds", preset="maestrano")
    assert 100 < age < 600  # the pending one's age, not the held one's three days
