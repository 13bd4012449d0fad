"""Live sync records: the push outbox, the notification inbox, conflicts and per-entity state.

Imported at the end of :mod:`maestrano_sync.models` so that migrations see one app.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = [
    "InboxEntry",
    "InboxRecord",
    "InboxSummary",
    "OutboxEntry",
    "RemoteTombstone",
    "SyncConflict",
    "SyncLock",
    "SyncState",
]


class OutboxEntry(models.Model):
    """A local change waiting to reach Connec! (transactional outbox, docs/protocol.md,
    'Integration duties').

    Written by the same connection, inside the caller's transaction, as the
    change itself: no change is lost between the save and the HTTP call. The
    payload is not stored: the drain reads the object's state when it sends,
    so several changes of one record coalesce into one request.
    """

    class Operation(models.TextChoices):
        UPSERT = "upsert", _("Create or update")
        DELETE = "delete", _("Delete")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PARKED = "parked", _("Parked (needs attention)")
        DONE = "done", _("Done")

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    entity = models.CharField(max_length=64)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    operation = models.CharField(max_length=16, choices=Operation.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    gave_up = models.BooleanField(
        default=False,
        help_text=_("Parked because Connec! kept failing (no answer, 5xx, 429), not refused"),
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("outbox entry")
        verbose_name_plural = _("outbox")
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["company", "status", "next_attempt_at"], name="sync_outbox_due"),
            models.Index(
                fields=["company", "content_type", "object_id", "status"],
                name="sync_outbox_object",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.entity} {self.object_id} ({self.status})"


class InboxEntry(models.Model):
    """A Connec! notification as received (raw payload), applied later by a task
    (docs/protocol.md, 'Connec! notifications')."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed (needs attention)")
        #: Records of an entity whose import the company's sync settings turned off: kept,
        #: one row per record (its newest version), until the import is on again
        #: (``maestrano_sync.inbox.hold_records``, ``release_held``).
        HELD = "held", _("Held (the sync settings keep it out)")

    preset = models.CharField(max_length=100)
    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(help_text=_("{entity: [records]} as POSTed by Connec!"))
    record_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("inbox entry")
        verbose_name_plural = _("inbox")
        ordering = ["pk"]
        indexes = [models.Index(fields=["company", "status"], name="sync_inbox_status")]

    def __str__(self) -> str:
        return f"notification {self.pk} of {self.company_id} ({self.status})"

    @property
    def entities(self) -> list[str]:
        return sorted(self.payload) if isinstance(self.payload, dict) else []


class InboxRecord(models.Model):
    """One record carried by an :class:`InboxEntry`: its entity, Connec! id and version.

    An index of the payloads, written with the entry (same transaction,
    ``maestrano_sync.notifications.index_inbox_entry``) and deleted with it: the sync
    status of a page's records (``maestrano_sync.status``) finds the notifications of
    those records without reading, or decoding, the company's other notifications.
    Records without a Connec! id (``maestrano_sync.notifications.notified_connec_id``)
    have no row.
    """

    entry = models.ForeignKey(InboxEntry, on_delete=models.CASCADE, related_name="records")
    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    entity = models.CharField(max_length=64)
    connec_id = models.CharField(max_length=64)
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text=_("The record's updated_at in Connec!, when it has one")
    )

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["company", "entity", "connec_id"], name="sync_inbox_record"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.connec_id} in notification {self.entry_id}"


class InboxSummary(models.Model):
    """What a company's inbox remembers of the notifications pruned from it
    (``maestrano_sync.inbox.prune_done_entries``): when the newest of them was received.

    The "last notification received" of the dashboard and of ``maestrano_sync_status``
    is the newest of this and of the inbox rows still kept
    (``maestrano_sync.selectors.sync_status``), so it survives ``SYNC["HISTORY_DAYS"]``.
    Written only when rows are pruned: the webhook writes nothing more for it.
    """

    company = models.OneToOneField(
        "maestrano_accounts.Company",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
    )
    pruned_received_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the newest notification pruned from the inbox was received"),
    )

    class Meta:
        verbose_name = _("inbox summary")
        verbose_name_plural = _("inbox summaries")

    def __str__(self) -> str:
        return f"inbox summary of {self.company_id}"


class SyncConflict(models.Model):
    """A record changed on both sides at once; the last writer (by time) won, this is the loser."""

    class Winner(models.TextChoices):
        LOCAL = "local", _("Local change kept")
        REMOTE = "remote", _("Connec! change kept")

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    entity = models.CharField(max_length=64)
    connec_id = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    winner = models.CharField(max_length=16, choices=Winner.choices)
    local_changed_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    losing_data = models.JSONField(default=dict, blank=True, help_text=_("The version discarded"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["company", "entity"], name="sync_conflict_lookup")]

    def __str__(self) -> str:
        return f"{self.entity}/{self.connec_id or self.object_id}: {self.winner} won"


class SyncState(models.Model):
    """Last sync times of one entity of one company, and the reconciliation watermark."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    entity = models.CharField(max_length=64)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_notification_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    reconcile_watermark = models.DateTimeField(
        null=True, blank=True, help_text=_("Connec! updated_at of the newest record reconciled")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "entity"], name="sync_state_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} of {self.company_id}"


class SyncLock(models.Model):
    """A lease: one worker at a time pushes or applies a company's changes.

    Taken by a conditional UPDATE (works on every backend, holds no
    transaction while Connec! is called) and renewed while working; a killed
    worker's lease simply expires.
    """

    company = models.OneToOneField(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    token = models.CharField(max_length=64, blank=True, default="")
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sync lock of {self.company_id}"


class RemoteTombstone(models.Model):
    """A Connec! record first seen deleted (never mapped here): older versions stay out.

    Notifications are not delivered in order: a record's creation whose first
    delivery failed can arrive *after* its deletion. Without a trace of the
    deletion, the late creation would create a local object that Connec! has
    deleted. ``updated_at`` is the deleted version's; a version not newer than
    it is stale (``maestrano_sync.inbox``).
    """

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    entity = models.CharField(max_length=64)
    connec_id = models.CharField(max_length=64)
    updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "entity", "connec_id"], name="sync_tombstone_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity}/{self.connec_id} deleted before we knew it"
