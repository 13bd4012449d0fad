"""Helpers of the live sync tests: read the sandbox hub over HTTP, write as another app."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests

#: MAESTRANO["CONNEC"] of the live tests: quick transport retries.
LIVE_CONNEC = {
    "HTTP_RETRIES": 2,
    "BACKOFF_FACTOR": 0.01,
    "BACKOFF_JITTER": 0.0,
    "BACKOFF_MAX": 0.05,
    "RETRY_AFTER_MAX": 0.05,
}
#: MAESTRANO["SYNC"] of the live tests.
LIVE_SYNC = {
    "MAX_ATTEMPTS": 4,
    "PUSH_RETRY_BACKOFF": 0.0,
    "PUSH_RETRY_BACKOFF_MAX": 0.0,
    "TASK_RETRY_BACKOFF": 0,
    "IMPORT_ON_COMPANY_CREATED": False,
}


def our_entry(record: dict[str, Any], *, provider: str, realm: str) -> dict[str, str] | None:
    """Our external id entry in a record's id list, if any."""
    for entry in record.get("id") or []:
        if (
            isinstance(entry, dict)
            and entry.get("provider") == provider
            and entry.get("realm") == realm
        ):
            return entry
    return None


def connec_id(record: Any) -> str:
    """The Connec! id of a record, or of an id / reference value (plain or external-ids list)."""
    value = record["id"] if isinstance(record, dict) else record
    if isinstance(value, str):
        return value
    return next(e["id"] for e in value if e["provider"] == "connec")


def organization_record(company, connec_id: str, name: str, updated_at: str) -> dict[str, Any]:
    """An active organization of ``company`` as a Connec! notification carries it."""
    return {
        "id": connec_id,
        "group_id": company.group_uid,
        "channel_id": "org-x",
        "resource_type": "organizations",
        "name": name,
        "status": "ACTIVE",
        "updated_at": updated_at,
    }


@dataclass
class HubClient:
    """The sandbox's Connec! API as one app sees it (HTTP only)."""

    connec_url: str
    group_uid: str
    api_id: str
    api_key: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.api_id, self.api_key)

    def url(self, entity: str, record_id: str | None = None) -> str:
        base = f"{self.connec_url}/api/v2/{self.group_uid}/{entity}"
        return f"{base}/{record_id}" if record_id else base

    def list(self, entity: str, *, external_ids: bool = True) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        skip = 0
        while True:
            response = requests.get(
                self.url(entity),
                params={"$top": 500, "$skip": skip, "$orderby": "created_at asc"},
                headers={"CONNEC-EXTERNAL-IDS": "true"} if external_ids else {},
                auth=self.auth,
                timeout=30,
            )
            assert response.status_code == 200, response.text
            page = response.json()[entity]
            records.extend(page)
            skip += len(page)
            if len(page) < 500:
                return records

    def get(self, entity: str, record_id: str) -> dict[str, Any]:
        response = requests.get(
            self.url(entity, record_id),
            headers={"CONNEC-EXTERNAL-IDS": "true"},
            auth=self.auth,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()[entity]

    def create(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(self.url(entity), json={entity: data}, auth=self.auth, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()[entity]

    def update(self, entity: str, record_id: str, data: dict[str, Any]) -> dict[str, Any]:
        response = requests.put(
            self.url(entity, record_id), json={entity: data}, auth=self.auth, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()[entity]


def register_peer(platform: Any, group: Any) -> Any:
    """Another application of the group (its writes notify ours)."""
    # Subscribed to nothing: the peer only writes, it receives no notifications.
    peer = platform.register_app(
        api_id=f"peer-{secrets.token_hex(3)}", name="Peer app", subscriptions={"nothing": True}
    )
    group.apps.add(peer)
    return peer


def hub_for(platform: Any, group_uid: str, app: Any) -> HubClient:
    return HubClient(
        connec_url=platform.connec_url, group_uid=group_uid, api_id=app.api_id, api_key=app.api_key
    )


def deliver_notifications(timeout: float = 20.0) -> None:
    """Wait until the sandbox delivered every pending notification (its own retries included)."""
    from maestrano_sandbox.connec.notifications import deliver_pending

    remaining = deliver_pending(timeout=timeout)
    assert remaining == 0, f"{remaining} notifications still undelivered"


def wait_until(predicate: Any, *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
