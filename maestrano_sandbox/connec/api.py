"""The Connec! API v2's operations (docs/protocol.md, 'Connec! API v2'): one dispatcher.

``execute`` answers one operation (method, group, entity, id, query, body) as
``(status, body, changed records)``; the HTTP views (:mod:`maestrano_sandbox.connec.rest`), each
batch op and the sandbox's pages call it. A group is visible only to the apps it uses
(404 otherwise, the same as an unknown group).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import parse_qsl, unquote, urlsplit

from django.db import DatabaseError, IntegrityError, transaction

from maestrano_integration import strict_input
from maestrano_sandbox.models import CONNEC_ENTITIES, ConnecRecord, Group, RegisteredApp

from . import selectors, services, statistics
from .errors import ConnecApiError, Problem
from .notifications import enqueue_changes
from .references import render_record, render_records
from .selectors import ListedRecord
from .services import WriteSession

logger = logging.getLogger(__name__)
SANDBOX_DATABASE = "sandbox"
BATCH_URL = re.compile(
    r"(?:^|/)api/v2/(?P<group>[^/?#]+)/(?P<entity>[^/?#]+)(?:/(?P<id>[^/?#]+))?/?$"
)


@dataclass
class Operation:
    method: str
    group_uid: str
    entity: str
    record_id: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    external_ids: bool = False
    # Absolute URL of the collection, for pagination links.
    collection_url: str = ""

    @property
    def query_params(self) -> dict[str, str]:
        """The query, under the name the DRF filter backends and paginator read."""
        return self.query


class RecordLookup(TypedDict):
    """How an operation names its record (the arguments of ``selectors.get_record``)."""

    group: Group
    entity: str
    record_id: str
    provider: str | None
    realm: str | None


@dataclass
class Outcome:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    changed: list[ConnecRecord] = field(default_factory=list)
    # A written record as the op left it: ``render_written`` turns it into ``body`` once
    # the session is flushed, for every op of a batch at once.
    written: ListedRecord | None = None
    group: Group | None = None
    operation: Operation | None = None
    # The notification deliveries the write stored (``run_and_notify``), one per receiving app.
    deliveries: list[int] = field(default_factory=list)


def entity_payload(operation: Operation) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``body[entity]`` and the smart-merge ``opts`` (inside the record or beside it)."""
    body = operation.body
    entity = operation.entity
    if not isinstance(body, dict) or not isinstance(body.get(entity), dict):
        raise ConnecApiError.single(400, f'The body must be {{"{entity}": {{...}}}}')
    payload = body[entity]
    opts = opts_of(body, payload)
    if opts is not None and not isinstance(opts, dict):
        raise ConnecApiError.single(422, "opts must be an object", pointer="/opts")
    return payload, opts


def opts_of(body: dict[str, Any], payload: dict[str, Any]) -> Any:
    """A write's smart-merge ``opts``: inside the record, else beside it."""
    return payload.get("opts", body.get("opts"))


def is_write(operation: Operation) -> bool:
    return operation.method.upper() in ("POST", "PUT")


def want(operation: Operation, *, session: WriteSession) -> None:
    """Register what a write will look up, so that ``session.load`` reads a batch's at once."""
    if not is_write(operation) or operation.entity not in CONNEC_ENTITIES:
        return
    try:
        check_operation_texts(operation)  # before any query
        group = session.group(operation.group_uid)
    except ConnecApiError:
        return  # execute answers it
    body = operation.body
    payload = body.get(operation.entity) if isinstance(body, dict) else None
    session.want(
        group=group,
        entity=operation.entity,
        record_id=operation.record_id,
        provider=operation.query.get("opts[provider]"),
        realm=operation.query.get("opts[realm]"),
        payload=payload,
        opts=opts_of(body, payload) if isinstance(payload, dict) else None,
    )


def execute(operation: Operation, *, session: WriteSession) -> Outcome:
    """Answer one operation; raises :class:`ConnecApiError` for 4xx answers.

    Writes go to ``session`` (run it inside a transaction on the ``sandbox``
    database, then flush it and ``render_written`` the outcomes); reads flush it
    first, so that they see the writes before them.
    """
    check_operation_texts(operation)
    entity = operation.entity
    if entity not in CONNEC_ENTITIES:
        raise ConnecApiError.single(
            404, f"Unknown entity {entity!r}; this hub serves {', '.join(CONNEC_ENTITIES)}"
        )
    group = session.group(operation.group_uid)
    method = operation.method.upper()
    external_ids = operation.external_ids

    def written(status: int, record: ConnecRecord, state: ListedRecord) -> Outcome:
        return Outcome(status, changed=[record], written=state, group=group, operation=operation)

    if method == "GET" or (entity == "company" and operation.record_id is None):
        session.flush()
    if entity == "company" and operation.record_id is None and method in ("GET", "PUT", "POST"):
        company = services.get_or_create_company(group=group)
        if method == "GET":
            return Outcome(
                200, {entity: render_record(company, group=group, external_ids=external_ids)}
            )
        payload, _opts = entity_payload(operation)
        result = session.update(
            group=group, record=session.adopt(group=group, record=company), payload=payload
        )
        return written(200, result.record, result.state)

    if method == "GET" and operation.record_id is None:
        records, paginator = selectors.list_records(group=group, entity=entity, request=operation)
        body = {
            entity: render_records(records, group=group, external_ids=external_ids),
            "pagination": paginator.pagination(),
        }
        return Outcome(200, body)
    lookup: RecordLookup = {
        "group": group,
        "entity": entity,
        "record_id": operation.record_id or "",
        "provider": operation.query.get("opts[provider]"),
        "realm": operation.query.get("opts[realm]"),
    }
    if method == "GET":
        record = selectors.get_record(**lookup)
        return Outcome(200, {entity: render_record(record, group=group, external_ids=external_ids)})
    if method == "POST" and operation.record_id is None:
        payload, opts = entity_payload(operation)
        result = session.create(group=group, entity=entity, payload=payload, opts=opts)
        return written(201 if result.created else 200, result.record, result.state)
    if method == "PUT" and operation.record_id is not None:
        payload, _opts = entity_payload(operation)
        result = session.update(group=group, record=session.lookup(**lookup), payload=payload)
        return written(200, result.record, result.state)
    raise ConnecApiError.single(405, f"{method} is not supported on this URL")


def render_written(outcomes: Iterable[Outcome], *, pks: Mapping[str, int] | None = None) -> None:
    """Render the written records into their outcomes' bodies: one ``render_records`` call
    (one external-id query) per group and id form, however many ops; ``pks``, the records'
    primary keys the write session knows (:meth:`RecordIndex.pks`)."""
    pending: dict[tuple[int, bool], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.written is not None and outcome.group and outcome.operation:
            pending[(outcome.group.pk, outcome.operation.external_ids)].append(outcome)
    for (_group, external_ids), items in pending.items():
        group = items[0].group
        assert group is not None
        states = [o.written for o in items if o.written is not None]
        rendered = render_records(states, group=group, external_ids=external_ids, pks=pks)
        for outcome, body in zip(items, rendered, strict=True):
            assert outcome.operation is not None
            outcome.body = {outcome.operation.entity: body}
            outcome.written = None


def check_operation_texts(operation: Operation) -> None:
    """Ids and query parameters must be text the database can look up (400 otherwise).

    The body was checked when parsed (:class:`maestrano_sandbox.connec.rest.ConnecJSONParser`);
    URL parts and query parameters (percent-decoded, so ``%00`` is a NUL) are checked here,
    for the HTTP API and every batch op alike, before any query.
    """
    try:
        strict_input.check_texts(
            {
                "group id": operation.group_uid,
                "entity": operation.entity,
                "record id": operation.record_id,
            },
            what="URL part",
        )
        strict_input.check_texts(operation.query.items(), what="query parameter")
    except strict_input.InputRefused as error:
        raise ConnecApiError.single(400, f"The request is refused: {error}") from None


def concurrent_write() -> ConnecApiError:
    return ConnecApiError.single(
        409, "An external id was attached concurrently by another request; retry the request"
    )


def run_and_notify(operation: Operation, *, app: RegisteredApp | None) -> Outcome:
    """One operation in its own transaction, its notifications stored in the same one.

    Reads other than the company singleton (created on first read) need no transaction.
    """
    session = WriteSession(app=app)
    if operation.method.upper() == "GET" and operation.entity != "company":
        return execute(operation, session=session)
    try:
        with transaction.atomic(using=SANDBOX_DATABASE):
            want(operation, session=session)
            session.load()
            outcome = execute(operation, session=session)
            session.flush()
            if session.changed:
                stored = enqueue_changes(
                    records=session.changed, source_app=app, groups=session.groups
                )
                outcome.deliveries = [delivery.pk for delivery in stored]
    except IntegrityError:
        # Another request attached one of the external ids between our check and our insert.
        raise concurrent_write() from None
    render_written([outcome], pks=session.index.pks())
    if outcome.status == 201 and outcome.changed:
        record = outcome.changed[0]
        logger.info(
            "Connec! %s %s created",
            record.entity,
            record.uid,
            extra={"entity": record.entity, "app": app.api_id if app else None},
        )
    return outcome


def parse_batch_op(raw: Any, *, index: int, external_ids: bool, base_url: str) -> Operation:
    if not isinstance(raw, dict):
        raise ConnecApiError.single(400, "Each op must be an object", pointer=f"/ops/{index}")
    method, url = raw.get("method"), raw.get("url")
    if not isinstance(method, str) or method.lower() not in ("get", "post", "put"):
        raise ConnecApiError.single(400, "method must be get, post or put", pointer=f"/ops/{index}")
    if not isinstance(url, str):
        raise ConnecApiError.single(400, "url must be a string", pointer=f"/ops/{index}/url")
    parts = urlsplit(url)
    match = BATCH_URL.search(parts.path)
    if match is None:
        raise ConnecApiError.single(
            400, f"url must look like /api/v2/<group_id>/<entity>[/<id>], got {url!r}"
        )
    params = raw.get("params")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if method.lower() == "get" and isinstance(params, dict):
        query.update({str(k): str(v) for k, v in params.items()})
    return Operation(
        method=method.upper(),
        # Each one path segment, quoted by the client (maestrano_integration.http.path_segment).
        group_uid=unquote(match["group"]),
        entity=match["entity"],
        # An external id may hold "/" or "?".
        record_id=unquote(match["id"]) if match["id"] is not None else None,
        query=query,
        body=params if method.lower() != "get" else None,
        external_ids=external_ids,
        collection_url=f"{base_url}api/v2/{match['group']}/{match['entity']}",
    )


def answer_batch(
    ops: list[Any], *, app: RegisteredApp, external_ids: bool, base_url: str, href: str
) -> list[dict[str, Any]]:
    """The ``results`` of a batch: ops applied one after the other, each succeeding or
    failing alone.

    ``sequential`` is accepted and always honoured (ops never run in parallel).
    The writes of the whole batch go through one :class:`WriteSession` (bulk reads,
    bulk writes) in one transaction with their notifications, coalesced: one
    delivery per receiving app. Should that transaction fail on the database (an
    external id attached concurrently by another request), it is rolled back and
    the batch replayed op by op, each op in its own transaction, as before.
    """
    operations: list[Operation | ConnecApiError] = []
    for index, raw in enumerate(ops):
        try:
            operations.append(
                parse_batch_op(raw, index=index, external_ids=external_ids, base_url=base_url)
            )
        except ConnecApiError as error:
            operations.append(error)
    session = WriteSession(app=app)
    pks = None
    try:
        outcomes = run_batch(operations, session=session)
        pks = session.index.pks()
    except DatabaseError:
        logger.warning("Connec! batch failed as a whole; replaying it op by op", exc_info=True)
        outcomes = replay_batch(operations, app=app)
    render_written((o for o in outcomes if isinstance(o, Outcome)), pks=pks)
    log_batch(outcomes, app=app)
    return [
        {"status": o.status, "body": o.body}
        if isinstance(o, Outcome)
        else {"status": o.status, "body": o.body(href=href)}
        for o in outcomes
    ]


BatchOutcome = Outcome | ConnecApiError


def log_batch(outcomes: list[BatchOutcome], *, app: RegisteredApp) -> None:
    """One INFO line per batch, with its counts (each record's line is at DEBUG, in
    :mod:`maestrano_sandbox.connec.services`: a line per record cost a tenth of a batch POST)."""
    created = sum(1 for o in outcomes if isinstance(o, Outcome) and o.status == 201)
    written = sum(1 for o in outcomes if isinstance(o, Outcome) and o.changed)
    failed = sum(1 for o in outcomes if isinstance(o, ConnecApiError))
    logger.info(
        "Connec! batch of %d ops: %d created, %d updated, %d failed",
        len(outcomes),
        created,
        written - created,
        failed,
        extra={"app": app.api_id, "ops_created": created, "ops_failed": failed},
    )


def run_op(
    index: int, operation: Operation | ConnecApiError, *, session: WriteSession
) -> BatchOutcome:
    """One op of a batch: its outcome or its error; a database error propagates."""
    if isinstance(operation, ConnecApiError):
        return operation
    try:
        return execute(operation, session=session)
    except ConnecApiError as error:
        return error
    except DatabaseError:
        raise
    except Exception:
        # One op's bug must not lose the others' results.
        logger.exception("Connec! batch op %s failed", index, extra={"app": session.app_id})
        return ConnecApiError(status=500, problems=[Problem("Unexpected error in this op")])


def run_batch(
    operations: list[Operation | ConnecApiError], *, session: WriteSession
) -> list[BatchOutcome]:
    """Every op through one session: bulk reads, bulk writes, one transaction."""
    with transaction.atomic(using=SANDBOX_DATABASE):
        for operation in operations:
            if isinstance(operation, Operation):
                want(operation, session=session)
        session.load()
        outcomes = [
            run_op(index, operation, session=session) for index, operation in enumerate(operations)
        ]
        session.flush()
        if session.changed:
            enqueue_changes(records=session.changed, source_app=session.app, groups=session.groups)
    statistics.rows_written(len(session.changed))
    return outcomes


def replay_batch(
    operations: list[Operation | ConnecApiError], *, app: RegisteredApp
) -> list[BatchOutcome]:
    """Each op in its own session and transaction (a failing one fails alone)."""
    outcomes: list[BatchOutcome] = []
    changed: list[ConnecRecord] = []
    for index, operation in enumerate(operations):
        session = WriteSession(app=app)
        try:
            with transaction.atomic(using=SANDBOX_DATABASE):
                outcome = run_op(index, operation, session=session)
                session.flush()
        except IntegrityError:
            outcome = concurrent_write()
        except DatabaseError:
            logger.exception("Connec! batch op %s failed", index, extra={"app": app.api_id})
            outcome = ConnecApiError(status=500, problems=[Problem("Unexpected error in this op")])
        else:
            changed.extend(session.changed)
        outcomes.append(outcome)
    if changed:
        with transaction.atomic(using=SANDBOX_DATABASE):
            enqueue_changes(records=changed, source_app=app)
    return outcomes
