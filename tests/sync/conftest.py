"""Fixtures of the sync tests: a sandbox group shared with our app, seeded over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.helpers.live_sync import LIVE_CONNEC, LIVE_SYNC, hub_for, register_peer

FAST_CONNEC = {
    "PAGE_SIZE": 3,
    "HTTP_RETRIES": 3,
    "BACKOFF_FACTOR": 0.01,
    "BACKOFF_JITTER": 0.0,
    "BACKOFF_MAX": 0.05,
    "RETRY_AFTER_MAX": 0.05,
}
FAST_SYNC = {
    "MAX_ATTEMPTS": 2,
    "TASK_RETRY_BACKOFF": 0,
}


@dataclass
class SandboxGroup:
    """A sandbox group our app is connected to, and helpers to write its Connec! data."""

    platform: Any
    group: Any
    app: Any
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return self.group.uid

    def create(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """POST a record as the sandbox's own app would (setup only, not our client)."""
        response = requests.post(
            f"{self.platform.connec_url}/api/v2/{self.uid}/{entity}",
            json={entity: record},
            auth=(self.app.api_id, self.app.api_key),
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
        created = response.json()[entity]
        self.ids.setdefault(entity, []).append(created["id"])
        return created

    def seed(self, *, organizations: int = 4, people: int = 7, items: int = 3, invoices: int = 4):
        """A small connected data set: people work for organizations, lines sell items."""
        orgs = [
            self.create(
                "organizations",
                {
                    "name": f"Org {n}",
                    "is_customer": True,
                    "is_supplier": n % 2 == 0,
                    "email": {"address": f"org{n}@example.com"},
                    "phone": {"landline": f"+61 2 0000 000{n}"},
                    "address": {
                        "billing": {
                            "line1": f"{n} Main St",
                            "city": "Sydney",
                            "postal_code": "2000",
                            "country": "AU",
                        }
                    },
                },
            )
            for n in range(organizations)
        ]
        persons = [
            self.create(
                "people",
                {
                    "title": "Dr.",
                    "first_name": f"First{n}",
                    "last_name": f"Last{n}",
                    "job_title": "Engineer",
                    "email": {"address": f"p{n}@example.com"},
                    "organization_id": orgs[n % len(orgs)]["id"] if orgs else None,
                },
            )
            for n in range(people)
        ]
        products = [
            self.create(
                "items",
                {
                    "code": f"SKU{n}",
                    "name": f"Item {n}",
                    "description": "A thing",
                    "sale_price": {"net_amount": 10.5 + n, "currency": "AUD"},
                    "purchase_price": {"net_amount": 4 + n},
                },
            )
            for n in range(items)
        ]
        for n in range(invoices):
            self.create(
                "invoices",
                {
                    "type": "CUSTOMER",
                    "status": "AUTHORISED",
                    "transaction_number": f"INV-{n}",
                    "transaction_date": "2024-03-01T00:00:00Z",
                    "due_date": "2024-03-31T00:00:00Z",
                    "organization_id": orgs[n % len(orgs)]["id"],
                    "person_id": persons[n % len(persons)]["id"],
                    "total_amount": 31.0,
                    "lines": [
                        {
                            "line_number": 1,
                            "description": "First",
                            "quantity": 2,
                            "unit_price": {"net_amount": 10.5},
                            "item_id": products[0]["id"],
                        },
                        {
                            "line_number": 2,
                            "description": "Second",
                            "quantity": 1,
                            "unit_price": {"net_amount": 10},
                            "item_id": products[-1]["id"],
                        },
                    ],
                },
            )
        return self


def make_group(platform, *, name: str = "Acme", apps=None) -> Any:
    from maestrano_sandbox.models import Group

    group = Group.objects.create(name=name)
    group.apps.add(*(apps or [platform.app]))
    return group


@pytest.fixture
def fast_sync(platform, settings):
    """Short backoffs and small pages, on top of the live platform's preset."""
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": dict(FAST_SYNC),
        "CONNEC": dict(FAST_CONNEC),
    }
    return settings.MAESTRANO


@pytest.fixture
def sandbox_group(platform, fast_sync) -> SandboxGroup:
    return SandboxGroup(platform=platform, group=make_group(platform), app=platform.app)


@pytest.fixture
def company(sandbox_group):
    from maestrano_accounts.models import Company

    return Company.objects.create(preset="maestrano", group_uid=sandbox_group.uid, name="Acme")


# --- the live sync (push, notifications, reconciliation) ------------------------------------


@pytest.fixture
def live_sync(platform, settings, sandbox_group):
    """Our app syncs live with the sandbox's hub: pushes on commit, quick retries."""
    settings.MAESTRANO = {**settings.MAESTRANO, "CONNEC": LIVE_CONNEC, "SYNC": dict(LIVE_SYNC)}
    return settings.MAESTRANO


@pytest.fixture
def manual_drain(live_sync, settings):
    """Drains run only when the test calls them."""
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**settings.MAESTRANO["SYNC"], "PUSH_ON_COMMIT": False},
    }


@pytest.fixture
def held_sync(manual_drain, settings):
    """Drains only when the test says so; the hub delivers notifications only when asked."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "BACKGROUND": False},
    }


@pytest.fixture
def peer(platform, sandbox_group, live_sync):
    """Another app of the group, writing through the hub's API (our app is notified)."""
    return hub_for(platform, sandbox_group.uid, register_peer(platform, sandbox_group.group))


@pytest.fixture
def hub(peer):
    """The hub as another app of the group sees it (never affected by our app's faults)."""
    return peer


def set_faults(platform, **values: Any) -> None:
    """Configure the sandbox's fault injection for our app (``maestrano_sandbox.faults``)."""
    from maestrano_sandbox.models import FaultConfig

    FaultConfig.objects.update_or_create(app=platform.app, defaults={"enabled": True, **values})


def clear_faults(platform) -> None:
    from maestrano_sandbox.models import FaultConfig

    FaultConfig.objects.filter(app=platform.app).delete()


#: Our client's Connec! timeout while answers are lost: it gives up on each call while the
#: sandbox holds it (``maestrano_sandbox.faults.holding``).
LOST_ANSWER_TIMEOUT = 0.3


@contextmanager
def connec_answers_lost(platform, settings) -> Iterator[None]:
    """Inside, Connec! holds each of our calls until our client gave up waiting for it
    (short timeout, no transport retry), and applies it on leaving: applied, its answer
    lost, whatever the machine's load (a delay in its place could run out first). On
    leaving, our client has its usual timeout and retries again, so that a retry is not
    itself a race against the clock; the held calls are applied after leaving (wait for
    them)."""
    from maestrano_sandbox import faults

    before = settings.MAESTRANO
    settings.MAESTRANO = {
        **before,
        "PRESETS": {"maestrano": platform.preset_values(connec={"timeout": LOST_ANSWER_TIMEOUT})},
        "CONNEC": {**before["CONNEC"], "HTTP_RETRIES": 0},
    }
    try:
        with faults.holding(platform.api_id, area="connec"):
            yield
    finally:
        settings.MAESTRANO = before
