"""The emulated Connec! data hub: records per group and entity, their external ids,
notification deliveries to the other apps of a group, and per-app fault settings.
"""

from __future__ import annotations

import hashlib
import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .core import Group, RegisteredApp

__all__ = [
    "CONNEC_ENTITIES",
    "ConnecExternalId",
    "ConnecRecord",
    "FaultConfig",
    "NotificationDelivery",
    "channel_id_for",
]

# The entities this hub serves. ``company`` is a singleton per group.
CONNEC_ENTITIES = ("organizations", "people", "items", "invoices", "company")


def channel_id_for(group_uid: str) -> str:
    """The group's Connec! channel (``org-xxxx``), also the realm of Connec!'s own external id.

    Derived rather than stored so every record of a group agrees without a
    column on the shared ``Group`` model.
    """
    return "org-" + hashlib.sha1(group_uid.encode(), usedforsecurity=False).hexdigest()[:4]


class ConnecRecord(models.Model):
    """One Connec! resource: fixed envelope columns plus the entity's JSON fields.

    References (``organization_id``, ``person_id``, lines' ``item_id``) are kept
    in ``data`` as the referenced record's Connec! id (a UUID string).
    """

    uid = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="connec_records")
    entity = models.CharField(max_length=32, choices=[(e, e) for e in CONNEC_ENTITIES])
    data = models.JSONField(default=dict, blank=True)
    # Strictly increasing across every write of this process (see connec.clock):
    # a client polling ``updated_at gt <last seen>`` never misses a change.
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # The app whose API call last wrote the record; empty = written from the
    # sandbox itself ("another app" simulated from the UI, admin or a command).
    written_by = models.ForeignKey(
        RegisteredApp, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["group", "entity", "updated_at", "id"], name="maestrano_sandbox_rec_updated"
            ),
            models.Index(
                fields=["group", "entity", "created_at", "id"], name="maestrano_sandbox_rec_created"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.uid} ({self.group_id})"

    @property
    def channel_id(self) -> str:
        return channel_id_for(self.group.uid)

    @property
    def resource_type(self) -> str:
        return self.entity


class ConnecExternalId(models.Model):
    """An id a third-party system gave a record (docs/protocol.md, 'External ids'): ``{realm,
    provider, id}``.

    ``group`` and ``entity`` repeat the record's so the uniqueness of an
    external id is enforced per group and entity by the database.
    """

    record = models.ForeignKey(ConnecRecord, on_delete=models.CASCADE, related_name="external_ids")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=32)
    provider = models.CharField(max_length=200)
    realm = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "entity", "provider", "realm", "external_id"],
                name="maestrano_sandbox_external_id_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.realm}/{self.external_id} -> {self.record_id}"

    def as_entry(self) -> dict[str, str]:
        return {"realm": self.realm, "provider": self.provider, "id": self.external_id}


class NotificationDelivery(models.Model):
    """One POST of changed records to one app's notifications webhook, with its retry state."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    STATUSES = [(s, s) for s in (PENDING, DELIVERING, DELIVERED, FAILED)]

    app = models.ForeignKey(
        RegisteredApp, on_delete=models.CASCADE, related_name="connec_deliveries"
    )
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="connec_deliveries")
    source_app = models.ForeignKey(
        RegisteredApp, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    payload = models.JSONField(help_text="{entity: [records]} as POSTed")
    record_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"], name="maestrano_sandbox_delivery_due"
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.app_id} ({self.status})"

    @property
    def entities(self) -> list[str]:
        return sorted(self.payload)


class FaultConfig(models.Model):
    """Faults the sandbox injects into one app's calls (see ``maestrano_sandbox.faults``).

    The rates partition one uniform draw per request, so they must add up to at
    most 1. ``settings.MAESTRANO_SANDBOX["FAULTS"][api_id]`` takes precedence over this row.
    """

    SCOPE_ALL = "all"
    SCOPE_CONNEC = "connec"
    SCOPE_ACCOUNT = "account"
    SCOPES = [
        (SCOPE_ALL, "Connec!, Account API and session checks"),
        (SCOPE_CONNEC, "Connec! only"),
        (SCOPE_ACCOUNT, "Account API and session checks only"),
    ]

    app = models.OneToOneField(RegisteredApp, on_delete=models.CASCADE, related_name="fault_config")
    enabled = models.BooleanField(default=True)
    scope = models.CharField(max_length=16, choices=SCOPES, default=SCOPE_ALL)
    error_rate = models.FloatField(default=0.0, help_text="Share of calls answered 5xx")
    error_status = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(500), MaxValueValidator(599)],
        help_text="Status of those answers; empty = 500, 502, 503 or 504 in turn of the draw",
    )
    rate_limit_rate = models.FloatField(default=0.0, help_text="Share answered 429")
    retry_after = models.PositiveIntegerField(default=1, help_text="Retry-After of a 429 (s)")
    latency_ms = models.PositiveIntegerField(default=0, help_text="Added to every call")
    drop_rate = models.FloatField(default=0.0, help_text="Share whose connection is dropped")
    gateway_timeout_rate = models.FloatField(
        default=0.0, help_text="Share applied, then answered 504 by a gateway (answer lost)"
    )
    seed = models.BigIntegerField(null=True, blank=True, help_text="Empty = not reproducible")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"faults for {self.app_id}"

    @property
    def is_active(self) -> bool:
        """Whether it changes anything: enabled, with a rate or a latency above zero."""
        rates = (self.error_rate, self.rate_limit_rate, self.drop_rate, self.gateway_timeout_rate)
        return self.enabled and (any(rate > 0 for rate in rates) or self.latency_ms > 0)
