"""The sync's own records: which local object is which Connec! record, and import runs.

:class:`IdMap` is the only answer to "do we know this record"; it is read and written
only through :mod:`maestrano_sync.idmap`.
"""

from __future__ import annotations

import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..values import CONNEC_ID_MAX_LENGTH


class IdMap(models.Model):
    """One local object ↔ one Connec! record, within one company (tenant).

    ``last_pulled_updated_at`` is the Connec! ``updated_at`` of the last version
    applied locally (import, notification): an older or equal version is stale.
    ``last_pushed_updated_at`` / ``last_pushed_hash`` describe our last push, so
    its echo and unchanged re-saves can be recognised.
    """

    # No index of its own: both unique constraints below start with the company, and
    # serve its lookups and cascades (one index fewer to write per row).
    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    entity = models.CharField(max_length=64, help_text=_("Connec! entity, e.g. people"))
    # No database constraint: PostgreSQL checks one per inserted row at commit, and an
    # import writes an IdMap row per record and per line (the two foreign keys' checks:
    # 100-250 ms per 8,000 rows, docs/performance.md). Content types are Django's own,
    # deleted through the ORM, whose CASCADE removes the rows. No index of its own either:
    # every lookup names the company (the unique constraint below serves it); only the
    # deletion of a content type reads the rows by it alone.
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    object_id = models.CharField(max_length=64, help_text=_("Primary key of the local object"))
    connec_id = models.CharField(max_length=CONNEC_ID_MAX_LENGTH)
    last_pulled_updated_at = models.DateTimeField(null=True, blank=True)
    last_pushed_updated_at = models.DateTimeField(null=True, blank=True)
    last_pushed_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("ID map entry")
        verbose_name_plural = _("ID map")
        constraints = [
            models.UniqueConstraint(
                fields=["company", "entity", "connec_id"], name="sync_idmap_unique_connec_id"
            ),
            models.UniqueConstraint(
                fields=["company", "content_type", "object_id"], name="sync_idmap_unique_object"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity}/{self.connec_id} ↔ {self.content_type_id}:{self.object_id}"


class SyncRun(models.Model):
    """One sync run of one company: an import (with progress per entity), or one drain of
    the outbox, one batch of notifications applied, one reconciliation
    (:mod:`maestrano_sync.history`),
    with what it did in ``counts``."""

    class Kind(models.TextChoices):
        IMPORT = "import", _("Initial import")
        PUSH = "push", _("Push")
        NOTIFICATIONS = "notifications", _("Notifications")
        RECONCILE = "reconcile", _("Reconciliation")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIAL = "partial", _("Succeeded with record errors")
        #: Nothing parked, but records left for a later try (retried, deferred): see
        #: ``maestrano_sync.history.run_status``.
        RETRYING = "retrying", _("Records left for a later try")
        FAILED = "failed", _("Failed")

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.IMPORT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    attempts = models.PositiveIntegerField(default=0, help_text=_("Times this run was (re)started"))
    error = models.TextField(blank=True, default="")
    counts = models.JSONField(
        default=dict, blank=True, help_text=_("What a push, notification or reconciliation run did")
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["company", "kind", "status"], name="sync_run_lookup")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} of {self.company_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.PARTIAL)


class SyncRunEntity(models.Model):
    """Progress and resumable cursor of one entity within a run.

    The cursor (``next_skip`` and the last record seen) is written in the same
    transaction as the page it follows, so a crash or retry continues from the
    next page and never imports a page twice.
    """

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="entities")
    entity = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(help_text=_("Order within the run (dependencies)"))
    done = models.BooleanField(default=False)
    total = models.PositiveIntegerField(null=True, blank=True, help_text=_("As Connec! reported"))
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text=_("Known and unchanged"))
    deleted = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "In their deleted state in Connec! (e.g. INACTIVE): none created, "
            "a local object mapped to one deleted"
        ),
    )
    failed = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    next_skip = models.PositiveIntegerField(default=0)
    last_connec_id = models.CharField(max_length=64, blank=True, default="")
    last_updated_at = models.CharField(max_length=40, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "position"]
        verbose_name_plural = _("sync run entities")
        constraints = [
            models.UniqueConstraint(fields=["run", "entity"], name="sync_run_entity_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} of run {self.run_id}: {self.next_skip}/{self.total}"

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.skipped + self.deleted + self.failed


class SyncRecordError(models.Model):
    """A Connec! record that could not be applied: parked with its reason, never blocking."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    run = models.ForeignKey(
        SyncRun, on_delete=models.CASCADE, null=True, blank=True, related_name="record_errors"
    )
    entity = models.CharField(max_length=64)
    connec_id = models.CharField(max_length=64, blank=True, default="")
    reason = models.TextField()
    payload_excerpt = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # A record is parked once per company, however often it is delivered or imported
    # (maestrano_sync.services.park_records): its entity, Connec! id and record, hashed
    # (maestrano_sync.fingerprints; "": a row saved otherwise, or parked before 0015 with
    # an excerpt cut short); how many parkings there were, and when the last one was.
    fingerprint = models.CharField(max_length=64, blank=True, default="", editable=False)
    times_seen = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["company", "entity"], name="sync_record_error_lookup")]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "fingerprint"],
                condition=~models.Q(fingerprint=""),
                name="sync_record_error_parked_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity}/{self.connec_id or '?'}: {self.reason[:80]}"

    @property
    def last_seen(self) -> datetime.datetime:
        """When the record was last parked or delivered: ``last_seen_at``, or when it was
        parked for a record seen once. Whether the record is still a problem is measured
        from it (``maestrano_sync.status``): a record applied since is fixed, one seen
        again after that is not."""
        return self.last_seen_at or self.created_at
