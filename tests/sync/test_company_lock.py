"""The company's sync lock (``maestrano_sync.locks``): one worker at a time, whatever the
order in which workers first meet a company; a free lock is taken in one statement."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_sync.locks import acquire_lock, release_lock, renew_lock
from maestrano_sync.models import SyncLock


def _company(group_uid: str = "cld-lock") -> Company:
    return Company.objects.create(preset="maestrano", group_uid=group_uid, name=group_uid)


@pytest.mark.django_db
def test_the_first_worker_creates_and_takes_the_lock_the_next_waits_its_turn():
    company = _company()

    token = acquire_lock(company_id=company.pk)

    assert token
    assert SyncLock.objects.filter(company=company).count() == 1
    assert acquire_lock(company_id=company.pk) is None  # held
    assert renew_lock(company_id=company.pk, token=token)
    release_lock(company_id=company.pk, token=token)
    again = acquire_lock(company_id=company.pk)
    assert again and again != token
    assert not renew_lock(company_id=company.pk, token=token)  # the old holder stops
    assert SyncLock.objects.filter(company=company).count() == 1


@pytest.mark.django_db
def test_a_free_lock_is_taken_in_one_statement():
    company = _company()
    release_lock(company_id=company.pk, token=acquire_lock(company_id=company.pk) or "")

    with CaptureQueriesContext(connection) as captured:
        token = acquire_lock(company_id=company.pk)

    assert token
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["UPDATE"]


@pytest.mark.django_db
def test_a_lapsed_lease_is_taken_over():
    company = _company()
    first = acquire_lock(company_id=company.pk)
    SyncLock.objects.filter(company=company).update(
        locked_until=timezone.now() - datetime.timedelta(seconds=1)
    )

    second = acquire_lock(company_id=company.pk)

    assert second and second != first
    assert not renew_lock(company_id=company.pk, token=first or "")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time"
)
@pytest.mark.django_db(transaction=True)
def test_workers_meeting_a_company_at_once_get_one_lock():
    company = _company()
    start = threading.Barrier(4)
    tokens: list[str | None] = []

    def worker() -> None:
        try:
            start.wait()
            tokens.append(acquire_lock(company_id=company.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(tokens) == 4
    assert len([token for token in tokens if token]) == 1
    assert SyncLock.objects.filter(company=company).count() == 1
