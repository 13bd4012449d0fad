"""The transactional outbox: every save or delete of a synced model becomes an outbox row.

Receivers of ``post_save`` / ``post_delete`` are connected for every registered
model (and for its child models: a changed invoice line pushes its invoice); they
write a row when the mapper has export enabled. A ``pre_delete`` receiver lists the
dependants whose synced reference the delete resets with a queryset ``UPDATE``
(``on_delete=SET_NULL``, ``SET_DEFAULT``, ``SET(...)``: no ``post_save``), and
writes an upsert for each of them (or for their parent, for a child row). The row
is written by the same database connection inside the caller's transaction, so it
commits or rolls back with the change; the drain task is enqueued with
``transaction.on_commit``, once per transaction and company.

Changes made while applying Connec! data (import, notifications,
reconciliation) run inside :func:`applying_remote_changes` and write no row:
they must not echo back to Connec!.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_delete

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
    record_changes(
        model=type(obj), operation=operation, entity=entity, changes=[(obj.pk, company_id)]
    )


def record_changes(
    *,
    model: type[models.Model],
    operation: str,
    entity: str,
    changes: Iterable[tuple[Any, Any]],
) -> None:
    """Write the outbox rows of changes of ``model``'s objects, given as (primary key,
    company id), in one statement (same connection, same transaction); those of no
    company are left out."""
    content_type = ContentType.objects.get_for_model(model)
    rows = [
        OutboxEntry(
            company_id=company_id,
            entity=entity,
            content_type=content_type,
            object_id=str(pk),
            operation=operation,
        )
        for pk, company_id in changes
        if company_id is not None and pk is not None
    ]
    if not rows:
        return
    OutboxEntry.objects.bulk_create(rows)
    for company_id in {row.company_id for row in rows}:
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


#: What a delete does to the rows referencing the deleted one without resetting their
#: reference by a queryset ``UPDATE``: deletes them (they push their own delete), keeps
#: the delete from happening, or leaves them alone.
_NOT_RESET = (models.CASCADE, models.PROTECT, models.RESTRICT, models.DO_NOTHING)


def _reset_references(
    model: type[models.Model],
) -> list[tuple[models.ForeignObject, Any, Any]]:
    """(foreign key, mapper pushing it, child mapping or ``None``) of every synced
    reference to ``model`` that a delete of one of its objects resets by a queryset
    ``UPDATE`` (``SET_NULL``, ``SET_DEFAULT``, ``SET(...)``), in a model whose changes
    are pushed (or a child model of one: its parent is pushed)."""
    found: list[tuple[models.ForeignObject, Any, Any]] = []
    for relation in model._meta.related_objects:
        field = relation.field
        if not (field.many_to_one or field.one_to_one) or (
            field.remote_field.on_delete in _NOT_RESET
        ):
            continue
        dependant = relation.related_model
        mapper = _export_mapper(dependant)
        if mapper is not None and field.name in mapper.references:
            found.append((field, mapper, None))
        for parent_mapper, child in _parents_of(dependant):
            if field.name in child.references:
                found.append((field, parent_mapper, child))
    return found


def _record_reset_references(*, obj: models.Model) -> None:
    """An upsert for every object whose synced reference to ``obj`` its delete resets.

    Django resets them with one queryset ``UPDATE`` after ``pre_delete`` (no
    ``post_save``): their ids are listed here, before it, one query per such foreign
    key and no model instance loaded. A dependant deleted by the same delete also gets
    its delete row, written later: the drain sends the delete (the last operation wins).
    """
    for field, mapper, child in _reset_references(type(obj)):
        dependants = field.model._base_manager.filter(**{field.name: obj})
        changes = (
            dependants.values_list("pk", mapper.tenant_field)
            if child is None
            else dependants.values_list(child.parent_field, child.tenant_field).distinct()
        )
        record_changes(
            model=mapper.model,
            operation=OutboxEntry.Operation.UPSERT,
            entity=mapper.entity,
            changes=list(changes),
        )


def _on_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if kwargs.get("raw") or is_applying_remote_changes():
        return
    _on_change(sender, instance, OutboxEntry.Operation.UPSERT)


def _on_pre_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if is_applying_remote_changes():
        return
    _record_reset_references(obj=instance)


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if is_applying_remote_changes():
        return
    _on_change(sender, instance, OutboxEntry.Operation.DELETE)


def connect_receivers() -> None:
    """Connect the outbox receivers (from ``SyncConfig.ready()``).

    They are connected for the models of every mapper (and of its child mappings),
    registered now or later: apps after ``maestrano_sync`` in ``INSTALLED_APPS`` register their
    mappers later than ``maestrano_sync`` is ready. Other models have no receiver of ours, so
    Django deletes their rows without loading them first (``Collector.can_fast_delete``:
    the IdMap rows, say). The receivers still look the sender up in the registry when a
    signal fires (a mapper unregistered, export turned off).
    """
    registry.on_register(_connect_for)


def _connect_for(mapper: Any) -> None:
    for model in (mapper.model, *(child.model for child in mapper.children)):
        label = model._meta.label_lower
        post_save.connect(
            _on_save, sender=model, dispatch_uid=f"maestrano_sync.outbox.save:{label}", weak=False
        )
        pre_delete.connect(
            _on_pre_delete,
            sender=model,
            dispatch_uid=f"maestrano_sync.outbox.pre_delete:{label}",
            weak=False,
        )
        post_delete.connect(
            _on_delete,
            sender=model,
            dispatch_uid=f"maestrano_sync.outbox.delete:{label}",
            weak=False,
        )
