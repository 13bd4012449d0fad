"""Existing local rows meet Connec!'s records: the import side of smart merging
(docs/sync.md, 'Matching fields').

A project adopting Maestrano may hold rows of a mapped model before its company ever
synced (customers its adapter hands to the company at the first login), while other
applications of the group already put the same customers in Connec!. The first push asks
Connec! to merge (``opts.matching_fields``); this is the mirror for what comes the other
way: a record the IdMap does not know, whose matching values equal those of exactly one of
the company's local rows linked to no Connec! record, is linked to that row
(:func:`link_matching_records`), and then applied as any linked record is (the conflict rule
included). Several such rows: nobody can tell which one it is, the record is parked.

Values are compared as the import would store them: each matching path's value goes
through the converter of the local field(s) ``fields`` maps from that path
(:func:`maestrano_sync.values.converter_for`), and equal means equal (``==``, the database's
``IN``): no case folding, no trimming. A record whose matching value is empty (absent,
``null``, ``""``, blank text) or that the converter refuses is not matched (Connec!'s own
rule: an empty matching value never merges).

Cost: :func:`has_unlinked_rows` is one look per entity and import run (the company's keys
in chunks and their links; an import of a company without unlinked rows then looks for
nothing more); while there are some,
one query per page (the rows with any of the page's matching values) and one for which of
those are linked, never one per record.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models

from maestrano_accounts.models import Company
from maestrano_integration.lookups import among
from maestrano_integration.model_fields import model_field

from . import idmap
from .mappers import Mapper, get_path
from .models import IdMap
from .payloads import deleted_record_fate
from .pipeline import Outcome, ParsedRecord
from .values import MappingError, converter_for

#: (local field name, Connec! path, model field) of each matching value, in the order of
#: ``matching_fields``.
_MatchingFields = tuple[tuple[str, str, models.Field], ...]


def _matching_fields(mapper: Mapper) -> _MatchingFields | None:
    """The local fields ``fields`` maps from the mapper's matching paths; ``None`` when it
    has none (a path it does not map is a system check error, maestrano_sync.E002)."""
    paths = mapper.matching_fields
    if not paths or isinstance(paths, str):
        return None
    found = tuple(
        (name, path, model_field(mapper.model, name))
        for path in paths
        for name, mapped in mapper.fields.items()
        if mapped == path
    )
    return found or None


def has_unlinked_rows(*, company: Company, mapper: Mapper, content_type_id: int) -> bool:
    """Whether ``company`` has rows of ``mapper``'s model that no IdMap row links and the
    mapper has matching fields (none without). An import asks once per entity and run:
    the rows it creates are linked, so none appears while it runs.

    Read in chunks of :data:`_CHUNK` primary keys (the tenant's index), each followed by
    which of them are linked (:func:`maestrano_sync.idmap.connec_ids_for_objects`), until an
    unlinked one turns up: one query for a company without rows, two for one with fewer
    than a chunk, a cost that follows the rows whatever PostgreSQL's statistics say. One
    ``EXISTS`` with the links as a correlated ``NOT EXISTS`` was planned, on statistics
    older than the tables, as a comparison of every row with every IdMap row (4 s for
    6,800 rows, all linked)."""
    if _matching_fields(mapper) is None:
        return False
    keys = mapper.for_company(company).order_by("pk").values_list("pk", flat=True)
    after: Any = None
    while True:
        chunk = list((keys if after is None else keys.filter(pk__gt=after))[:_CHUNK])
        if not chunk:
            return False
        linked = idmap.connec_ids_for_objects(
            company=company, content_type=content_type_id, object_ids=chunk
        )
        if any(str(pk) not in linked for pk in chunk):
            return True
        if len(chunk) < _CHUNK:
            return False
        after = chunk[-1]


#: Primary keys per read of :func:`has_unlinked_rows`.
_CHUNK = 5000


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def matching_key(
    fields: _MatchingFields, data: Mapping[str, Any], instance: Any
) -> tuple[Any, ...] | None:
    """The converted matching values of a record, or ``None`` when one is empty or refused
    (such a record is never matched)."""
    key = []
    for _, path, field in fields:
        raw = get_path(data, path, None)
        if _empty(raw):
            return None
        try:
            value = converter_for(field)(raw, instance)
        except (ValidationError, MappingError):
            return None  # the record is parked with the reason when it is mapped
        if _empty(value):
            return None
        try:
            hash(value)
        except TypeError:
            return None
        key.append(value)
    return tuple(key)


def ambiguity_reason(*, mapper: Mapper, count: int, key: tuple[Any, ...]) -> str:
    """Why a record equal to several unlinked local rows is parked, and what to do."""
    paths = ", ".join(mapper.matching_fields)
    values = ", ".join(repr(value) if not isinstance(value, str) else value for value in key)
    return (
        f"{count} local records not linked to Connec! have the same {paths} as this record "
        f"({values}): it is linked to none of them nor imported as another one; give them "
        "different values (or delete the duplicates), then retry this record"
    )


def link_matching_records(
    *,
    company: Company,
    mapper: Mapper,
    content_type: ContentType,
    parsed: list[ParsedRecord],
    known: Mapping[str, IdMap],
    outcome: Outcome,
    dead: Mapping[str, datetime.datetime | None] | None = None,
) -> tuple[list[ParsedRecord], dict[str, IdMap]]:
    """Link the records the IdMap does not know to the company's unlinked local rows with
    equal matching values; ``parsed`` without the records parked (several such rows: the
    reason in ``outcome``) and ``known`` with the new links.

    One query when some unknown live record of ``parsed`` has every matching value (the
    candidates of the whole batch), one more for their links when it finds some, and one
    write and one lookup when it links some;
    nothing otherwise. Two records of the batch equal to the same single row: the first
    (the older version, pages are read by ``updated_at``) takes it, the other is
    imported as new, as it would be from a later page. Call in the batch's transaction,
    under the company's lock, before the records are planned. ``dead``: when Connec!
    deleted records never mapped here (their ``RemoteTombstone``): a version of one that is
    not newer takes no row (the caller skips it).
    """
    matching = _matching_fields(mapper)
    known = dict(known)
    if matching is None:
        return parsed, known
    names = [name for name, _, _ in matching]
    instance = mapper.model()  # what the converters may look at (nothing, for Django's)
    wanted: dict[str, tuple[Any, ...]] = {}
    for connec_id, data, updated_at in parsed:
        if connec_id in known:
            continue
        dead_at = (dead or {}).get(connec_id)
        if dead_at is not None and (updated_at is None or updated_at <= dead_at):
            continue
        if deleted_record_fate(mapper=mapper, data=data, mapped=False, exists=False) is not None:
            continue  # a record in its deleted state takes no row
        key = matching_key(matching, data, instance)
        if key is not None:
            wanted[connec_id] = key
    if not wanted:
        return parsed, known
    # The company's rows with these values (its index on them, when it has one), then which
    # of them are linked (the IdMap's unique index): two lookups whose cost follows what
    # they find. One query with the links as a correlated NOT EXISTS left the plan to
    # PostgreSQL's statistics, which lag behind tables that grow as notifications arrive:
    # planned for empty tables, it compared every row with every IdMap row (1.5 s a batch
    # at 5,000 records, benchmarks/sync.py).
    candidates = mapper.for_company(company).order_by()
    for position, name in enumerate(names):
        candidates = candidates.filter(among(name, {key[position] for key in wanted.values()}))
    found = list(candidates.values_list("pk", *names))
    linked = idmap.connec_ids_for_objects(
        company=company, content_type=content_type, object_ids=[pk for pk, *_ in found]
    )
    rows: dict[tuple[Any, ...], list[Any]] = {}
    for pk, *values in found:
        if str(pk) not in linked:
            rows.setdefault(tuple(values), []).append(pk)
    if not rows:
        return parsed, known
    links: dict[str, str] = {}
    ambiguous: set[str] = set()
    taken: set[Any] = set()
    for connec_id, key in wanted.items():
        free = [pk for pk in rows.get(key, ()) if pk not in taken]
        if len(free) == 1:
            links[connec_id] = str(free[0])
            taken.add(free[0])
        elif len(free) > 1:
            ambiguous.add(connec_id)
    kept = []
    for record in parsed:
        connec_id, data, _ = record
        if connec_id in ambiguous:
            count = len(rows[wanted[connec_id]])
            reason = ambiguity_reason(mapper=mapper, count=count, key=wanted[connec_id])
            outcome.errors.append((connec_id, reason, data))
        else:
            kept.append(record)
    known.update(
        idmap.link_unlinked(
            company=company, entity=mapper.entity, content_type=content_type, links=links
        )
    )
    return kept, known
