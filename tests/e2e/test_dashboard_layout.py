"""The dashboard's sync card in headless Chromium, with every column and problem filled in:

- nothing overflows sideways at desktop width (1280 px: the sync table fits its card) nor on
  a phone (390 px: the sync table and the history are one block per row);
- after *Retry* in the problems list, the confirmation is in view.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from crm.models import Person
from maestrano_accounts.models import Company
from maestrano_sync.models import OutboxEntry, SyncRecordError, SyncRun
from maestrano_sync.services import link_record
from tests.e2e.helpers import (
    EVERY_IMPACT,
    axe_problems,
    sandbox_on_the_other_host,
    sign_in_at_the_platform,
)

pytestmark = pytest.mark.browser

GROUP, ADMIN = "cld-layout", "usr-layout-admin"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def busy_dashboard(platform, browser_page, settings):
    """An admin signed in on a dashboard whose sync card has something in every column."""
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO.get("SYNC", {}), "PUSH_ON_COMMIT": False},
    }
    sandbox = sandbox_on_the_other_host(platform)
    platform.add_member(
        group_uid=GROUP,
        group_name="Layout Pty Ltd",
        user_uid=ADMIN,
        name="Ada",
        surname="Admin",
        email="ada@layout.example",
        role="Admin",
        currency="AUD",
        country="AU",
        timezone="Australia/Sydney",
    )
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in_at_the_platform(page, app=platform.url, sandbox=sandbox, user=ADMIN, group=GROUP)
    company = Company.objects.get(group_uid=GROUP)
    content_type = ContentType.objects.get_for_model(Person)
    people = [
        Person.objects.create(
            company=company, first_name=f"Bartholomew-{n}", last_name="Featherstonehaugh"
        )
        for n in range(4)
    ]
    OutboxEntry.objects.filter(company=company).delete()
    week_ago = timezone.now() - dt.timedelta(days=7)
    for person in people[:2]:
        link_record(company=company, entity="people", obj=person, connec_id=f"c-{person.pk}")
    for person, fields in zip(
        people,
        (
            {"status": OutboxEntry.Status.PARKED, "last_error": "HTTP 422: email is invalid"},
            {"status": OutboxEntry.Status.PARKED, "gave_up": True, "last_error": "HTTP 503"},
            {"attempts": 3, "next_attempt_at": timezone.now(), "last_error": "HTTP 502"},
            {},
        ),
        strict=True,
    ):
        OutboxEntry.objects.create(
            company=company,
            entity="people",
            content_type=content_type,
            object_id=str(person.pk),
            operation=OutboxEntry.Operation.UPSERT,
            **fields,
        )
    SyncRecordError.objects.create(
        company=company, entity="people", connec_id="c-missing", reason="email: not an email"
    )
    for kind in (SyncRun.Kind.PUSH, SyncRun.Kind.NOTIFICATIONS, SyncRun.Kind.RECONCILE):
        SyncRun.objects.create(
            company=company,
            kind=kind,
            status=SyncRun.Status.PARTIAL,
            attempts=1,
            counts={"sent": 1234, "done": 1200, "parked": 34, "retried": 5, "requests": 13},
            error="HTTP 422 from Connec!: " + "a long technical explanation " * 10,
            finished_at=timezone.now(),
        )
    from maestrano_sync.models import SyncState

    SyncState.objects.update_or_create(
        company=company,
        entity="people",
        defaults={"last_push_at": week_ago, "last_notification_at": week_ago},
    )
    page.goto(f"{platform.url}/dashboard/")
    return page


def overflow(page) -> dict[str, int]:
    """How far the page, and the sync card's scrolling boxes, are wider than they show."""
    return page.evaluate(
        """() => {
          const found = {page: document.documentElement.scrollWidth - window.innerWidth};
          document.querySelectorAll('#sync .table-wrap').forEach((wrap, index) => {
            found['table ' + index] = wrap.scrollWidth - wrap.clientWidth;
          });
          return found;
        }"""
    )


def test_the_sync_card_fits_at_desktop_and_phone_width(busy_dashboard):
    page = busy_dashboard
    assert page.locator("#sync .sync-table .attention .badge").count() == 3
    assert page.locator("#sync .sync-history tbody tr").count() >= 3

    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        assert all(width <= 0 for width in overflow(page).values()), (viewport, overflow(page))
        assert axe_problems(page, impacts=EVERY_IMPACT) == []

    # On a phone the history is one block per run, not a table to scroll sideways.
    page.set_viewport_size(PHONE)
    display = page.evaluate(
        "getComputedStyle(document.querySelector('#sync .sync-history tbody tr')).display"
    )
    assert display == "block"


def test_the_confirmation_of_a_retry_is_in_view(busy_dashboard):
    page = busy_dashboard
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        button = page.locator('#problems li[data-kind="outbox"] form button').first
        button.scroll_into_view_if_needed()
        button.click()
        page.wait_for_selector("#messages li")
        assert "Queued again" in page.text_content("#messages")
        in_view = page.evaluate(
            """() => {
              const box = document.querySelector('#messages li').getBoundingClientRect();
              return box.top >= 0 && box.bottom <= window.innerHeight;
            }"""
        )
        where = page.evaluate("[window.scrollY, window.innerHeight, location.href]")
        assert in_view, f"the confirmation is out of view at {viewport['width']} px: {where}"
