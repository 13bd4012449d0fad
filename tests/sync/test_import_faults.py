"""The import under the sandbox's fault injection: resumption, retries, transient failures."""

from __future__ import annotations

import base64
import logging

import pytest

from crm.models import Invoice, Organization, Person
from maestrano_sync.importer import ImportFailed, run_import
from maestrano_sync.models import IdMap, SyncRun
from maestrano_sync.tasks import import_company


def set_faults(settings, platform, **plan) -> None:
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "FAULTS": {platform.api_id: plan} if plan else {},
    }


def test_an_import_interrupted_after_page_3_resumes_from_page_4(
    platform, settings, sandbox_group, company
):
    # Without prefetching, page 4 is requested only after page 3 is applied.
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "PREFETCH": False},
    }
    sandbox_group.seed(organizations=14, people=0, items=0, invoices=0)  # 5 pages of 3

    def break_after_page_3(progress):
        if progress.pages == 3:
            set_faults(settings, platform, error_rate=1.0)

    with pytest.raises(ImportFailed) as caught:
        run_import(company=company, progress=break_after_page_3)

    interrupted = caught.value.run
    assert caught.value.retryable
    assert interrupted.status == SyncRun.Status.FAILED
    assert "transient" in interrupted.error
    cursor = interrupted.entities.get(entity="organizations")
    assert (cursor.pages, cursor.next_skip, cursor.created, cursor.done) == (3, 9, 9, False)
    assert Organization.objects.filter(company=company).count() == 9

    set_faults(settings, platform)
    pages_seen = []
    resumed = run_import(
        company=company, progress=lambda p: pages_seen.append((p.entity, p.pages, p.next_skip))
    )

    assert resumed.pk == interrupted.pk
    assert resumed.attempts == 2
    assert resumed.status == SyncRun.Status.SUCCEEDED
    assert pages_seen[0] == ("organizations", 4, 12)
    cursor = resumed.entities.get(entity="organizations")
    assert (cursor.created, cursor.updated, cursor.skipped, cursor.done) == (14, 0, 0, True)
    assert Organization.objects.filter(company=company).count() == 14
    assert IdMap.objects.filter(company=company).exclude(entity__contains="/").count() == 14


def test_rate_limits_and_server_errors_are_retried_and_the_import_completes(
    platform, settings, sandbox_group, company, caplog
):
    sandbox_group.seed(organizations=5, people=6, items=2, invoices=3)
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "CONNEC": {**settings.MAESTRANO["CONNEC"], "HTTP_RETRIES": 6},
    }
    set_faults(settings, platform, error_rate=0.3, rate_limit_rate=0.3, retry_after=1, seed=7)
    caplog.set_level(logging.INFO, logger="maestrano_sandbox.faults")

    result = import_company.delay(company.pk)

    assert result.get()["status"] == SyncRun.Status.SUCCEEDED
    injected = {
        r.getMessage().split(":")[1].strip()[:3]
        for r in caplog.records
        if r.name == "maestrano_sandbox.faults"
    }
    assert "429" in injected
    assert injected & {"500", "502", "503", "504"}
    assert Organization.objects.filter(company=company).count() == 5
    assert Person.objects.filter(company=company).count() == 6
    assert Invoice.objects.filter(company=company).count() == 3


def test_a_persistent_outage_is_retried_by_the_task_then_left_failed_and_resumable(
    platform, settings, sandbox_group, company
):
    sandbox_group.seed(organizations=2, people=0, items=0, invoices=0)
    set_faults(settings, platform, error_rate=1.0)

    import_company.delay(company.pk)  # eager here: the retries run inline

    run = SyncRun.objects.get(company=company)
    assert run.status == SyncRun.Status.FAILED
    assert run.attempts == 2  # MAX_ATTEMPTS in these tests; each attempt resumed the same run
    assert "transient" in run.error

    set_faults(settings, platform)
    import_company.delay(company.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.attempts == 3
    assert Organization.objects.filter(company=company).count() == 2


def test_an_interrupted_prefetching_import_resumes_without_gaps_or_duplicates(
    platform, settings, sandbox_group, company
):
    sandbox_group.seed(organizations=14, people=0, items=0, invoices=0)

    def break_after_page_2(progress):
        if progress.pages == 2:
            set_faults(settings, platform, error_rate=1.0)

    with pytest.raises(ImportFailed) as caught:
        run_import(company=company, progress=break_after_page_2)

    cursor = caught.value.run.entities.get(entity="organizations")
    # The pages fetched ahead before the fault (if any) were applied; the cursor follows what
    # was committed. While page 2 is applied, page 3 may wait in the prefetcher's queue (one
    # page) and page 4 be on its way already: up to two pages past the break.
    assert cursor.pages in (2, 3, 4)
    assert cursor.next_skip == cursor.created == 3 * cursor.pages
    assert Organization.objects.filter(company=company).count() == cursor.created

    set_faults(settings, platform)
    resumed = run_import(company=company)

    cursor = resumed.entities.get(entity="organizations")
    assert (cursor.created, cursor.updated, cursor.pages) == (14, 0, 5)
    assert Organization.objects.filter(company=company).count() == 14


@pytest.mark.parametrize("huge", [True, False], ids=["100kB", "echo"])
def test_connecs_error_text_is_kept_on_one_bounded_line_without_the_credentials(
    platform, settings, sandbox_group, company, caplog, huge
):
    sandbox_group.seed(organizations=2, people=0, items=0, invoices=0)
    token = base64.b64encode(f"{platform.api_id}:{platform.api_key}".encode()).decode()
    detail = f"key {platform.api_key}\r\nAuthorization: Basic {token}\n" + (
        "frame of the hub's own code\n" * 3600 if huge else "see the logs"
    )
    set_faults(settings, platform, error_rate=1.0, error_status=500, error_detail=detail)
    caplog.set_level(logging.WARNING)

    with pytest.raises(ImportFailed):
        run_import(company=company)

    run = SyncRun.objects.get(company=company)
    assert "500" in run.error and "transient" in run.error
    assert "\n" not in run.error and "\r" not in run.error
    assert len(run.error) <= 600
    texts = [run.error, *(record.getMessage() for record in caplog.records)]
    assert not [text for text in texts if platform.api_key in text or token in text]
    if not huge:
        assert "key *** Authorization: Basic *** see the logs" in run.error
