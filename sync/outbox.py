"""The transactional outbox: every save or delete of a synced model becomes an outbox row.

Receivers of ``post_save`` / ``post_delete`` are connected for every registered
model whose mapper has export enabled (and for its child models: a changed
invoice line pushes its invoice). The row is written by the same database
connection inside the caller's transaction, so it commits or rolls back with
the change; the drain task is enqueued with ``transaction.on_commit``, once per
transaction and company.

Changes made while applying Connec! data (import, notifications,
reconciliation) run inside :func:`applying_remote_changes` and write no row:
they must not echo back to Connec!.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import secrets
from collections.abc import Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from maestrano_integration.conf import maestrano_settings

from .models import OutboxEntry, SyncLock
from .registry import registry

logger = logging.getLogger(__name__)

_applying_remote: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "maestrano_applying_remote_changes", default=False
)


@contextlib.contextmanager
def applying_remote_changes() -> Iterator[None]:
    """Within this block, saves and deletes of synced models are not pushed to Connec!."""
    token = _applying_remote.set(True)
    try:
        yield
    finally:
        _applying_remote.reset(token)


def is_applying_remote_changes() -> bool:
    return _applying_remote.get()


# --- writing rows ---------------------------------------------------------------------


def record_change(*, obj: models.Model, operation: str, entity: str, company_id: Any) -> None:
    """Write the outbox row of one change (same connection, same transaction)."""
    if company_id is None:
        return
    OutboxEntry.objects.create(
        company_id=company_id,
        entity=entity,
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=str(obj.pk),
        operation=operation,
    )
    schedule_drain(company_id=company_id)


def schedule_drain(*, company_id: Any, using: str = DEFAULT_DB_ALIAS) -> None:
    """Enqueue the company's drain once the current transaction commits (once per company)."""
    if not maestrano_settings.SYNC["PUSH_ON_COMMIT"]:
        return
    connection = connections[using]
    if connection.in_atomic_block:
        # Django drops the callbacks of a rolled-back (sub)transaction from this list,
        # so it is the exact set of drains still to enqueue.
        for _, callback, _ in connection.run_on_commit:
            if getattr(callback, "maestrano_drain_company", None) == company_id:
                return

    def enqueue() -> None:
        from .tasks_live import drain_outbox

        drain_outbox.delay(company_id)

    enqueue.maestrano_drain_company = company_id  # type: ignore[attr-defined]
    transaction.on_commit(enqueue, using=using)


def _export_mapper(model: type[models.Model]) -> Any:
    """The mapper pushing ``model``'s changes, or ``None`` (not registered, export off)."""
    if not registry.is_registered(model):
        return None
    mapper = registry.for_model(model)
    return mapper if mapper.directions.export_enabled else None


def _parents_of(model: type[models.Model]) -> list[tuple[Any, Any]]:
    """(parent mapper, child mapping) of every child mapping stored in ``model``."""
    return [
        (mapper, child)
        for mapper in registry.mappers()
        if mapper.directions.export_enabled
        for child in mapper.children
        if child.model is model
    ]


def _on_change(sender: type[models.Model], instance: models.Model, operation: str) -> None:
    mapper = _export_mapper(sender)
    if mapper is not None:
        record_change(
            obj=instance,
            operation=operation,
            entity=mapper.entity,
            company_id=mapper.company_id_of(instance),
        )
        return
    for parent_mapper, child in _parents_of(sender):
        # A changed child (invoice line) pushes its parent, if the parent still exists
        # (lines deleted together with their invoice need no upsert of it).
        parent_id = getattr(instance, f"{child.parent_field}_id", None)
        parent_model = parent_mapper.model
        if parent_id is None or not parent_model._default_manager.filter(pk=parent_id).exists():
            continue
        record_change(
            obj=parent_model(pk=parent_id),
            operation=OutboxEntry.Operation.UPSERT,
            entity=parent_mapper.entity,
            company_id=child.company_id_of(instance),
        )


def _on_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if kwargs.get("raw") or is_applying_remote_changes():
        return
    _on_change(sender, instance, OutboxEntry.Operation.UPSERT)


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if is_applying_remote_changes():
        return
    _on_change(sender, instance, OutboxEntry.Operation.DELETE)


def connect_receivers() -> None:
    """Connect the outbox receivers (from ``SyncConfig.ready()``).

    They listen to every model and look the sender up in the registry when a
    signal fires: apps after ``sync`` in ``INSTALLED_APPS`` register their
    mappers later than ``sync`` is ready.
    """
    post_save.connect(_on_save, dispatch_uid="sync.outbox.save", weak=False)
    post_delete.connect(_on_delete, dispatch_uid="sync.outbox.delete", weak=False)


# --- the company lock -----------------------------------------------------------------


def lock_lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=float(maestrano_settings.SYNC["LOCK_LEASE_SECONDS"]))


def acquire_lock(*, company_id: Any) -> str | None:
    """Take the company's sync lock for one lease; the token, or ``None`` when it is held."""
    SyncLock.objects.get_or_create(company_id=company_id)
    token = secrets.token_hex(16)
    now = timezone.now()
    taken = (
        SyncLock.objects.filter(company_id=company_id)
        .filter(models.Q(locked_until__isnull=True) | models.Q(locked_until__lt=now))
        .update(token=token, locked_until=now + lock_lease())
    )
    return token if taken else None


def renew_lock(*, company_id: Any, token: str) -> bool:
    """Extend the lease; ``False`` if another worker took it over (stop working then)."""
    return bool(
        SyncLock.objects.filter(company_id=company_id, token=token).update(
            locked_until=timezone.now() + lock_lease()
        )
    )


def release_lock(*, company_id: Any, token: str) -> None:
    SyncLock.objects.filter(company_id=company_id, token=token).update(locked_until=None)


@contextlib.contextmanager
def company_lock(*, company_id: Any) -> Iterator[str | None]:
    """``with company_lock(company_id=...) as token:`` — ``token`` is ``None`` if busy."""
    token = acquire_lock(company_id=company_id)
    try:
        yield token
    finally:
        if token is not None:
            release_lock(company_id=company_id, token=token)
