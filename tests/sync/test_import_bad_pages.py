"""The initial import against a Connec! whose pages are not what the protocol says
(docs/protocol.md, 'Pagination'): counts that lie, pages shorter than asked, answers that are
no page, a hub that ignores ``$skip``. Served by a stand-in Connec! on 127.0.0.1 (the sandbox
keeps to the protocol). The import either imports every record once, or stops with its
reason on the run (resumable, nothing lost); never a silent gap, never an endless loop."""

from __future__ import annotations

import dataclasses
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_sync.importer import ImportFailed, run_import
from maestrano_sync.models import IdMap, SyncRecordError, SyncRun
from tests.helpers.loopback import serving
from tests.helpers.stand_in_connec import Request, stand_in_connec

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = "cld-1"
NAMES = [f"Org {n}" for n in range(9)]


def records() -> list[dict[str, Any]]:
    return [
        {
            "id": f"o-{n}",
            "group_id": GROUP,
            "updated_at": f"2024-05-01T10:00:0{n}Z",
            "name": name,
        }
        for n, name in enumerate(NAMES)
    ]


def page(request: Request, *, total: Any = 9, size: int | None = None) -> dict[str, Any]:
    """The page Connec! answers for ``request`` (``size``: at most that many records)."""
    served = records()[request.skip : request.skip + min(request.top, size or request.top)]
    return {
        "organizations": served,
        "pagination": {"skip": request.skip, "top": request.top, "total": total},
    }


@pytest.fixture
def company(settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {"MAX_ATTEMPTS": 2, "TASK_RETRY_BACKOFF": 0, "IMPORT_ON_COMPANY_CREATED": False},
        "CONNEC": {"PAGE_SIZE": 3, "HTTP_RETRIES": 0},
    }
    return Company.objects.create(preset="maestrano", group_uid=GROUP, name="Acme")


def import_organizations(company: Company, **options: Any) -> SyncRun:
    return run_import(company=company, entities=["organizations"], **options)


def assert_imported_once(company: Company) -> None:
    assert sorted(Organization.objects.values_list("name", flat=True)) == NAMES
    assert IdMap.objects.filter(company=company).count() == len(NAMES)


@pytest.mark.parametrize(
    "total",
    [3, 0, -1, True, "9", None, 10**30, 2**31],
    ids=["low", "zero", "negative", "true", "text", "none", "beyond-64-bits", "beyond-32-bits"],
)
def test_a_total_that_lies_loses_no_record_and_stops_nothing(settings, company, total):
    """The count is for progress only: pages are read until Connec! has no more."""
    with stand_in_connec(settings, lambda request: page(request, total=total)):
        run = import_organizations(company)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert_imported_once(company)
    cursor = run.entities.get()
    assert (cursor.created, cursor.next_skip, cursor.done) == (9, 9, True)


def test_pages_shorter_than_asked_are_read_up_to_the_total(settings, company):
    """A hub that answers fewer records than ``$top`` while its total says more."""
    with stand_in_connec(settings, lambda request: page(request, size=2)):
        run = import_organizations(company)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert_imported_once(company)


NOT_A_PAGE = {
    "not JSON": ("<html>Down for maintenance</html>", "not a JSON object: <html>Down for"),
    "a JSON list": ([{"id": "o-3"}], "not a JSON object"),
    "JSON null": ("null", "not a JSON object"),
    "an empty object": ({}, "no 'organizations' list"),
    "a null list": ({"organizations": None}, "no 'organizations' list"),
    "an error": ({"errors": [{"detail": "Index rebuilding"}]}, "no 'organizations' list: Index"),
    "a text list": ({"organizations": "o-3"}, "its 'organizations' is not a list"),
    "a cut answer holding a record nested deeper than any parser reads": (
        '{"organizations": [{"id": "o-3", "x": ' + "[" * 100_000 + "]" * 100_000 + "}]",
        "not a JSON object",
    ),
}


@pytest.mark.parametrize("answer", list(NOT_A_PAGE))
def test_an_answer_that_is_no_page_stops_the_run_with_its_reason_and_it_resumes_there(
    settings, company, answer
):
    bad, reason = NOT_A_PAGE[answer]
    broken = True

    def answers(request: Request) -> Any:
        return bad if broken and request.skip == 3 else page(request)

    with stand_in_connec(settings, answers):
        with pytest.raises(ImportFailed) as stopped:
            import_organizations(company)

        run = stopped.value.run
        assert run.status == SyncRun.Status.FAILED
        assert run.error.startswith(
            "Connec! answered no page of 'organizations' at $skip=3: " + reason
        ), run.error
        # The first page is kept, the cursor waits at the page that could not be read.
        assert sorted(Organization.objects.values_list("name", flat=True)) == NAMES[:3]
        assert run.entities.get().next_skip == 3

        broken = False
        resumed = import_organizations(company)

    assert resumed.pk == run.pk
    assert resumed.status == SyncRun.Status.SUCCEEDED
    assert_imported_once(company)


@pytest.mark.parametrize("total", [9, None], ids=["with-total", "without-total"])
def test_a_hub_that_ignores_skip_stops_the_run_instead_of_looping_or_leaving_a_gap(
    settings, company, total
):
    def first_page(request: Request) -> dict[str, Any]:
        return page(
            dataclasses.replace(request, query={**request.query, "$skip": "0"}), total=total
        )

    with stand_in_connec(settings, first_page) as requests, pytest.raises(ImportFailed) as stopped:
        import_organizations(company)

    run = stopped.value.run
    assert run.error == (
        "Connec! answered the same page of 'organizations' at $skip=3 as at $skip=0: "
        "it does not page by $skip"
    )
    assert len(requests) == 2
    assert sorted(Organization.objects.values_list("name", flat=True)) == NAMES[:3]
    assert run.entities.get().next_skip == 3


def test_pagination_links_that_lie_are_never_followed(settings, company):
    """``next`` pointing to another host, ``previous`` to the page itself: the import pages
    by ``$skip`` alone, so no request (with our credentials) goes anywhere else."""
    elsewhere: list[str] = []

    class OtherHost(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            elsewhere.append(self.path)
            self.send_response(200)
            self.end_headers()

    with serving(OtherHost) as other_url:

        def lying_links(request: Request) -> dict[str, Any]:
            answer = page(request)
            answer["pagination"].update(
                next=f"{other_url}/api/v2/{GROUP}/organizations?$skip=0",
                previous=f"/api/v2/{GROUP}/organizations?$skip={request.skip}",
            )
            return answer

        with stand_in_connec(settings, lying_links) as requests:
            run = import_organizations(company)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert_imported_once(company)
    assert [request.skip for request in requests] == [0, 3, 6, 9]
    assert elsewhere == []


#: Records no JSON parser of the page reads, as raw text: ``o-4`` nested deeper than any
#: parser reads, ``o-7`` holding an integer of more digits than Python converts.
UNREADABLE = {
    "o-4": '{"id": "o-4", "group_id": "cld-1", "notes": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "o-7": '{"id": "o-7", "group_id": "cld-1", "total": ' + "7" * 5000 + "}",
}


def test_an_unreadable_record_is_parked_alone_and_the_import_goes_on(settings, company):
    """One record a page's parser cannot read sets that record aside (parked with its
    reason), not its page: the rest of the page and the following pages are imported."""

    def answers(request: Request) -> str:
        served = page(request)
        texts = [
            UNREADABLE.get(record["id"], json.dumps(record)) for record in served["organizations"]
        ]
        pagination = json.dumps(served["pagination"])
        return f'{{"organizations": [{", ".join(texts)}], "pagination": {pagination}}}'

    with stand_in_connec(settings, answers):
        run = import_organizations(company)

    assert run.status == SyncRun.Status.PARTIAL, run.error  # done, with records parked
    imported = sorted(Organization.objects.values_list("name", flat=True))
    assert imported == [name for name in NAMES if name not in ("Org 4", "Org 7")]
    cursor = run.entities.get()
    assert (cursor.created, cursor.failed, cursor.next_skip, cursor.done) == (7, 2, 9, True)
    parked = {error.reason: error for error in SyncRecordError.objects.filter(run=run)}
    assert sorted(parked) == [
        "unreadable record: $.organizations[1].total has 5000 digits, more than a number may have",
        "unreadable record: $.organizations[1]: not valid JSON (nested deeper than 64 levels)",
    ]
    assert all(error.company == company for error in parked.values())
    assert '"id": "o-7"' in "".join(error.payload_excerpt for error in parked.values())
