"""The transactional outbox: every save or delete of a synced model becomes an outbox row.

Receivers of ``post_save`` / ``post_delete`` are connected for every registered
model (and for its child models: a changed invoice line pushes its invoice); they
write a row when the mapper has export enabled. The row is written by the same database
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
import logging
from collections.abc import Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.signals import post_delete, post_save

from .models import OutboxEntry
from .registry import registry
from .scheduling import schedule_drain

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

    They are connected for the models of every mapper (and of its child mappings),
    registered now or later: apps after ``sync`` in ``INSTALLED_APPS`` register their
    mappers later than ``sync`` is ready. Other models have no receiver of ours, so
    Django deletes their rows without loading them first (``Collector.can_fast_delete``:
    the IdMap rows, say). The receivers still look the sender up in the registry when a
    signal fires (a mapper unregistered, export turned off).
    """
    registry.on_register(_connect_for)


def _connect_for(mapper: Any) -> None:
    for model in (mapper.model, *(child.model for child in mapper.children)):
        label = model._meta.label_lower
        post_save.connect(
            _on_save, sender=model, dispatch_uid=f"sync.outbox.save:{label}", weak=False
        )
        post_delete.connect(
            _on_delete, sender=model, dispatch_uid=f"sync.outbox.delete:{label}", weak=False
        )
