"""Sub-records (invoice lines) keep their Connec! ids both ways.

Connec! gives every line of a record an id of its own (docs/protocol.md,
'Sub-records'). The IdMap links each local child row to it, under the entity
``"<parent entity>/<path>"`` (``invoices/lines``), with in ``last_pushed_hash``
the hash of the row's mapped values when both sides last agreed.

* **Import** (initial import, notifications, reconciliation): an incoming line
  whose id is linked to a child row of the same parent updates that row in place;
  a new id creates a row; rows whose line is gone are deleted. Nothing is
  replaced as a whole, so local primary keys stay.
* **Push** (:mod:`maestrano_sync.push`): each line carries its id; a line unchanged since
  both sides agreed is sent as ``{"id": ...}`` only, so Connec! keeps its own
  values for it (another app may have changed them meanwhile); the answer's
  values of those lines are then applied locally, and new lines get their ids
  from the answer. A line edited here and another edited in Connec! both survive.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.contrib.contenttypes.models import ContentType
from django.db import models

from maestrano_accounts.models import Company
from maestrano_integration.bulk_insert import insert_instances
from maestrano_integration.model_fields import field_attname

from . import idmap
from .keys import key_reader, local_keys
from .mappers import (
    ChildMapping,
    Mapper,
    MappingError,
    ReferenceResolver,
    connec_id_of,
    get_path,
    to_connec_value,
)
from .outbox import applying_remote_changes

#: Added to the position of renumbered rows before they take their new numbers.
POSITION_OFFSET = 1_000_000


class _PreparedParent(Protocol):
    """What the importer prepared for one parent record (``maestrano_sync.pipeline.Prepared``)."""

    instance: models.Model
    is_new: bool
    data: Mapping[str, Any]
    children: dict[type[ChildMapping], list[models.Model]]


def sub_entity(mapper: type[Mapper] | Mapper, child: type[ChildMapping]) -> str:
    """The IdMap entity of ``child``'s rows: ``invoices/lines``."""
    return f"{mapper.entity}/{child.path}"


#: ``json.dumps``' arguments of :func:`values_hash`, kept: ``dumps`` builds an encoder per
#: call when given any.
_HASH_ENCODER = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))


def values_hash(child: type[ChildMapping], obj: models.Model) -> str:
    """A hash of the child row's mapped values (what the two sides compare)."""
    values = {name: to_connec_value(getattr(obj, attname)) for name, attname in _hashed(child)}
    return hashlib.sha256(_HASH_ENCODER.encode(values).encode()).hexdigest()


#: :func:`_hashed`'s answers, per child class, with the declarations they were made from.
_HASHED: dict[type[ChildMapping], tuple[tuple[Any, ...], tuple[tuple[str, str], ...]]] = {}


def _hashed(child: type[ChildMapping]) -> tuple[tuple[str, str], ...]:
    """(name, instance attribute) of each value :func:`values_hash` hashes: made once per
    class, made again if its declarations change (as its field applier is)."""
    declared = (child.model, child.fields, child.references, child.position_field)
    kept = _HASHED.get(child)
    if kept is None or kept[0] != declared:
        names = [*child.fields, *child.references]
        if child.position_field and child.position_field not in names:
            names.append(child.position_field)
        pairs = tuple((name, field_attname(child.model, name)) for name in names)
        kept = _HASHED[child] = (
            (child.model, dict(child.fields), dict(child.references), child.position_field),
            pairs,
        )
    return kept[1]


def item_ids(data: Mapping[str, Any], child: type[ChildMapping]) -> list[str | None]:
    """The Connec! id of each sub-record of ``data`` (``None`` where it has none)."""
    items = get_path(data, child.path, None)
    ids: list[str | None] = []
    for item in items if isinstance(items, list) else ():
        try:
            ids.append(
                # A line's Connec! entry is in its record's realm.
                connec_id_of(item.get("id"), record=data) if isinstance(item, Mapping) else None
            )
        except MappingError:
            ids.append(None)
    return ids


def update_field_names(child: type[ChildMapping]) -> list[str]:
    names = child.local_field_names()
    if child.position_field and child.position_field not in names:
        names.append(child.position_field)
    return names


# --- import -------------------------------------------------------------------------------


def save_children(*, company: Company, mapper: Mapper, prepared: Sequence[_PreparedParent]) -> None:
    """Write the children of imported records, matched to the local rows by Connec! id."""
    for child in mapper.children:
        parents = [item for item in prepared if child in item.children]
        if parents:
            _save_child_rows(company=company, mapper=mapper, child=child, parents=parents)


def _save_child_rows(
    *,
    company: Company,
    mapper: Mapper,
    child: type[ChildMapping],
    parents: list[_PreparedParent],
) -> None:
    model = child.model
    manager = model._default_manager
    content_type = ContentType.objects.get_for_model(model)
    parent_attname = field_attname(model, child.parent_field)
    updated_parents = [item.instance.pk for item in parents if not item.is_new]
    # {child pk (text): parent pk} of the rows the updated parents have now.
    existing: dict[str, Any] = {}
    positions: dict[str, Any] = {}
    linked: dict[str, str] = {}
    position = child.position_field
    if updated_parents:
        for pk, parent_pk, current in (
            child.for_company(company)
            .filter(**{f"{child.parent_field}__in": updated_parents})
            .values_list("pk", parent_attname, position or "pk")
        ):
            existing[str(pk)] = parent_pk
            positions[str(pk)] = current
        linked = idmap.objects_for_connec_ids(
            company=company, content_type=content_type, object_ids=list(existing)
        )
    kept: set[str] = set()
    updated: list[tuple[models.Model, str | None]] = []
    created: list[tuple[models.Model, str | None]] = []
    read_key = key_reader(model)
    for item in parents:
        for obj, line_id in zip(item.children[child], _aligned_ids(item, child), strict=True):
            setattr(obj, child.parent_field, item.instance)
            object_id = linked.get(line_id) if line_id else None
            if (
                object_id is not None
                and object_id not in kept
                and existing.get(object_id) == item.instance.pk
            ):
                kept.add(object_id)
                obj.pk = read_key(object_id)
                obj._state.adding = False
                updated.append((obj, line_id))
            else:
                created.append((obj, line_id))
    gone = local_keys(model, [pk for pk in existing if pk not in kept])
    if gone:
        manager.filter(pk__in=gone).delete()
    if updated:
        moved = [
            obj.pk
            for obj, _ in updated
            if position and positions.get(str(obj.pk)) != getattr(obj, position)
        ]
        if position and moved:
            # Renumbered rows step aside first: positions are often unique per parent.
            manager.filter(pk__in=moved).update(**{position: models.F(position) + POSITION_OFFSET})
        manager.bulk_update([obj for obj, _ in updated], update_field_names(child))
    if created:
        for obj, _ in created:
            obj.pk = None  # a rolled-back bulk write may have numbered it
            obj._state.adding = True
        insert_instances(model, [obj for obj, _ in created])
    idmap.relink_children(
        company=company,
        entity=sub_entity(mapper, child),
        content_type=content_type,
        rows=[(obj, line_id, values_hash(child, obj)) for obj, line_id in updated + created],
        unlinked=[str(pk) for pk in gone],
    )


def _aligned_ids(item: _PreparedParent, child: type[ChildMapping]) -> list[str | None]:
    """The Connec! ids of ``item``'s child objects, one per object (``None`` when unknown)."""
    ids = item_ids(item.data, child)
    objects = item.children[child]
    if len(ids) != len(objects):  # a mapper built its own children: no identity
        return [None] * len(objects)
    return ids


# --- push ---------------------------------------------------------------------------------


@dataclass
class SentLine:
    """One child row as a push sent it."""

    child: type[ChildMapping]
    obj: models.Model
    line_id: str | None
    digest: str
    id_only: bool


@dataclass
class SentChildren:
    """The child rows of one pushed record, in the order of its payload's lists."""

    lines: list[SentLine] = field(default_factory=list)


def load_links(
    *, company: Company, mapper: Mapper, parents: Iterable[models.Model]
) -> dict[type[ChildMapping], dict[Any, list[tuple[models.Model, str | None, str]]]]:
    """{child: {parent pk: [(row, linked line id, hash when both sides agreed)]}} for the
    window's parents: two queries per child mapping."""
    parents = [parent.pk for parent in parents]
    result: dict[type[ChildMapping], dict[Any, list[tuple[models.Model, str | None, str]]]] = {}
    if not parents:
        return result
    for child in mapper.children:
        parent_attname = field_attname(child.model, child.parent_field)
        rows = child.model._default_manager.filter(**{f"{child.parent_field}__in": parents})
        rows = rows.order_by(*(child.position_field,) if child.position_field else (), "pk")
        objects = list(rows)
        links = idmap.links_for_objects(
            company=company,
            content_type=ContentType.objects.get_for_model(child.model),
            object_ids=[obj.pk for obj in objects],
        )
        by_parent: dict[Any, list[tuple[models.Model, str | None, str]]] = {}
        for obj in objects:
            line_id, digest = links.get(str(obj.pk), (None, ""))
            by_parent.setdefault(getattr(obj, parent_attname), []).append((obj, line_id, digest))
        result[child] = by_parent
    return result


def mark_lines(
    *,
    mapper: Mapper,
    parent: models.Model,
    data: dict[str, Any],
    links: Mapping[type[ChildMapping], Mapping[Any, list[tuple[models.Model, str | None, str]]]],
) -> SentChildren:
    """Give each line of ``data`` its Connec! id; reduce the lines unchanged since both
    sides agreed to that id. ``data``'s lists must be in the rows' order (as
    :meth:`Mapper.to_connec` writes them); a list that does not match is left alone."""
    sent = SentChildren()
    for child in mapper.children:
        items = get_path(data, child.path, None)
        rows = links.get(child, {}).get(parent.pk, [])
        if not isinstance(items, list) or len(items) != len(rows):
            continue
        for index, (obj, line_id, agreed) in enumerate(rows):
            digest = values_hash(child, obj)
            id_only = bool(line_id) and digest == agreed
            if line_id:
                items[index] = {"id": line_id} if id_only else {"id": line_id, **items[index]}
            sent.lines.append(
                SentLine(child=child, obj=obj, line_id=line_id, digest=digest, id_only=id_only)
            )
    return sent


def apply_answers(
    *,
    company: Company,
    mapper: Mapper,
    answers: Sequence[tuple[SentChildren, Mapping[str, Any] | None]],
) -> None:
    """After Connec! accepted pushes of ``mapper``'s records (each: the lines sent, the
    record answered): link new lines to the ids Connec! gave them, apply its values of
    the lines sent as a bare id (another app may have changed them), and note that
    both sides agree on every line. A few queries for the whole window."""
    for child in mapper.children:
        pairs = [
            ([line for line in sent.lines if line.child is child], record)
            for sent, record in answers
            if isinstance(record, Mapping)
        ]
        pairs = [(lines, record) for lines, record in pairs if lines]
        if pairs:
            _apply_child_answers(company=company, mapper=mapper, child=child, pairs=pairs)


def _apply_child_answers(
    *,
    company: Company,
    mapper: Mapper,
    child: type[ChildMapping],
    pairs: list[tuple[list[SentLine], Mapping[str, Any]]],
) -> None:
    matched: list[tuple[SentLine, str | None, Mapping[str, Any] | None]] = []
    wanted: dict[str, set[str]] = {}
    for lines, record in pairs:
        items = get_path(record, child.path, None)
        if not isinstance(items, list):
            continue
        answered = [
            (line_id, item)
            for line_id, item in zip(item_ids(record, child), items, strict=True)
            if line_id and isinstance(item, Mapping)
        ]
        by_id = dict(answered)
        sent_ids = {line.line_id for line in lines if line.line_id}
        # New lines got ids in the answer, in the order they were sent.
        fresh = iter([pair for pair in answered if pair[0] not in sent_ids])
        for line in lines:
            if line.line_id is None:
                line_id, item = next(fresh, (None, None))
                matched.append((line, line_id, item))
            elif line.line_id in by_id:
                item = by_id[line.line_id]
                matched.append((line, line.line_id, item))
                if line.id_only:
                    for entity, ids in child.referenced_ids(item).items():
                        wanted.setdefault(entity, set()).update(ids)
            # else: removed in Connec! meanwhile; its notification deletes the row here.
    references = ReferenceResolver(
        local_pks={
            entity: idmap.local_pks_for(company=company, entity=entity, connec_ids=ids)
            for entity, ids in wanted.items()
        }
    )
    rows: list[tuple[models.Model, str | None, str]] = []
    changed: list[models.Model] = []
    for line, line_id, item in matched:
        digest = line.digest
        if line.id_only and item is not None:
            try:
                child.apply_fields(item, line.obj, references)
            except MappingError:
                continue  # Connec!'s value does not fit here: the next import parks it
            digest = values_hash(child, line.obj)
            if digest == line.digest:
                continue  # nothing changed on either side
            changed.append(line.obj)
        rows.append((line.obj, line_id, digest))
    if changed:
        with applying_remote_changes():
            child.model._default_manager.bulk_update(changed, update_field_names(child))
    idmap.relink_children(
        company=company,
        entity=sub_entity(mapper, child),
        content_type=ContentType.objects.get_for_model(child.model),
        rows=rows,
    )
