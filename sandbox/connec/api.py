"""The Connec! API v2 over HTTP and batch (docs/protocol.md, 'Connec! API v2'):
thin views around one dispatcher.

``execute`` answers one operation (method, group, entity, id, query, body) as
``(status, body, changed records)``; the HTTP view and each batch op call it.
Authentication: HTTP basic auth of a registered app (401 otherwise); a group
is visible only to the apps it uses (404 otherwise, the same as an unknown
group). Requests and answers are JSON; ``application/vnd.api+json`` and
``application/json`` are both accepted, and answered in kind.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.auth import authenticate_app
from sandbox.models import CONNEC_ENTITIES, ConnecRecord, RegisteredApp

from . import selectors, services
from .errors import ConnecApiError, Problem, error_body
from .notifications import enqueue_changes
from .queries import parse_list_parameters
from .references import render_record, render_records

logger = logging.getLogger(__name__)
SANDBOX_DATABASE = "sandbox"
JSON_API = "application/vnd.api+json"
EXTERNAL_IDS_HEADER = "CONNEC-EXTERNAL-IDS"
MAX_BATCH_OPS = 500
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


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    changed: list[ConnecRecord] = field(default_factory=list)


def entity_payload(operation: Operation) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``body[entity]`` and the smart-merge ``opts`` (inside the record or beside it)."""
    body = operation.body
    entity = operation.entity
    if not isinstance(body, dict) or not isinstance(body.get(entity), dict):
        raise ConnecApiError.single(400, f'The body must be {{"{entity}": {{...}}}}')
    payload = body[entity]
    opts = payload.get("opts", body.get("opts"))
    if opts is not None and not isinstance(opts, dict):
        raise ConnecApiError.single(422, "opts must be an object", pointer="/opts")
    return payload, opts


def execute(operation: Operation, *, app: RegisteredApp | None) -> Outcome:
    """Answer one operation; raises :class:`ConnecApiError` for 4xx answers.

    Run it inside a transaction on the ``sandbox`` database.
    """
    entity = operation.entity
    if entity not in CONNEC_ENTITIES:
        raise ConnecApiError.single(
            404, f"Unknown entity {entity!r}; this hub serves {', '.join(CONNEC_ENTITIES)}"
        )
    group = selectors.group_for_app(group_uid=operation.group_uid, app=app)
    method = operation.method.upper()
    render = {"group": group, "external_ids": operation.external_ids}

    def lookup() -> ConnecRecord:
        return selectors.get_record(
            group=group,
            entity=entity,
            record_id=operation.record_id or "",
            provider=operation.query.get("opts[provider]"),
            realm=operation.query.get("opts[realm]"),
        )

    if entity == "company" and operation.record_id is None and method in ("GET", "PUT", "POST"):
        company = services.get_or_create_company(group=group)
        if method == "GET":
            return Outcome(200, {entity: render_record(company, **render)})
        payload, _opts = entity_payload(operation)
        record = services.update_record(record=company, payload=payload, app=app)
        return Outcome(200, {entity: render_record(record, **render)}, [record])

    if method == "GET" and operation.record_id is None:
        parameters = parse_list_parameters(operation.query)
        records, total = selectors.list_records(group=group, entity=entity, parameters=parameters)
        pagination: dict[str, Any] = {
            "skip": parameters.skip,
            "top": parameters.top,
            "total": total,
        }
        if parameters.skip + len(records) < total:
            pagination["next"] = page_url(operation, skip=parameters.skip + parameters.top)
        if parameters.skip > 0:
            pagination["previous"] = page_url(
                operation, skip=max(parameters.skip - parameters.top, 0)
            )
        return Outcome(200, {entity: render_records(records, **render), "pagination": pagination})
    if method == "GET":
        return Outcome(200, {entity: render_record(lookup(), **render)})
    if method == "POST" and operation.record_id is None:
        payload, opts = entity_payload(operation)
        result = services.create_record(
            group=group, entity=entity, payload=payload, app=app, opts=opts
        )
        status = 201 if result.created else 200
        return Outcome(status, {entity: render_record(result.record, **render)}, [result.record])
    if method == "PUT" and operation.record_id is not None:
        payload, _opts = entity_payload(operation)
        record = services.update_record(record=lookup(), payload=payload, app=app)
        return Outcome(200, {entity: render_record(record, **render)}, [record])
    raise ConnecApiError.single(405, f"{method} is not supported on this URL")


def page_url(operation: Operation, *, skip: int) -> str:
    query = {k: v for k, v in operation.query.items() if not k.startswith("opts[")}
    query["$skip"] = str(skip)
    return f"{operation.collection_url}?{urlencode(query)}"


def wants_external_ids(headers: Any) -> bool:
    return str(headers.get(EXTERNAL_IDS_HEADER, "")).strip().lower() in ("true", "1")


def json_response(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
    accept = request.META.get("HTTP_ACCEPT", "") + request.META.get("CONTENT_TYPE", "")
    content_type = JSON_API if JSON_API in accept else "application/json"
    return JsonResponse(body, status=status, content_type=content_type)


def error_response(request: HttpRequest, error: ConnecApiError) -> HttpResponse:
    response = json_response(request, error.status, error.body(href=request.path))
    if error.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="connec"'
    return response


def unauthorized() -> ConnecApiError:
    return ConnecApiError.single(401, "Invalid or missing API credentials (HTTP basic api id:key)")


def parse_json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConnecApiError.single(400, f"The body is not valid JSON: {error}") from None


def run_and_notify(operation: Operation, *, app: RegisteredApp | None) -> Outcome:
    """One operation in its own transaction, its notifications stored in the same one.

    Reads other than the company singleton (created on first read) need no transaction.
    """
    if operation.method.upper() == "GET" and operation.entity != "company":
        return execute(operation, app=app)
    with transaction.atomic(using=SANDBOX_DATABASE):
        outcome = execute(operation, app=app)
        if outcome.changed:
            enqueue_changes(records=outcome.changed, source_app=app)
    return outcome


@csrf_exempt
def entity_view(
    request: HttpRequest, group_id: str, entity: str, record_id: str | None = None
) -> HttpResponse:
    """``/api/v2/<group_id>/<entity>[/<id>]``: list, retrieve, create, update."""
    try:
        app = authenticate_app(request)
        if app is None:
            raise unauthorized()
        body = parse_json_body(request) if request.method in ("POST", "PUT") else None
        operation = Operation(
            method=request.method or "GET",
            group_uid=group_id,
            entity=entity,
            record_id=record_id,
            query={k: request.GET[k] for k in request.GET},
            body=body,
            external_ids=wants_external_ids(request.headers),
            collection_url=request.build_absolute_uri(request.path.rsplit("/" + record_id, 1)[0])
            if record_id
            else request.build_absolute_uri(request.path),
        )
        outcome = run_and_notify(operation, app=app)
    except ConnecApiError as error:
        return error_response(request, error)
    return json_response(request, outcome.status, outcome.body)


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
        group_uid=match["group"],
        entity=match["entity"],
        record_id=match["id"],
        query=query,
        body=params if method.lower() != "get" else None,
        external_ids=external_ids,
        collection_url=f"{base_url}api/v2/{match['group']}/{match['entity']}",
    )


@csrf_exempt
def batch_view(request: HttpRequest) -> HttpResponse:
    """``POST /batch``: ops run one after the other, each in its own transaction.

    ``sequential`` is accepted and always honoured (ops never run in parallel).
    Notifications of the whole batch are coalesced: one delivery per receiving app.
    """
    try:
        if request.method != "POST":
            raise ConnecApiError.single(405, "The batch endpoint only accepts POST")
        app = authenticate_app(request)
        if app is None:
            raise unauthorized()
        body = parse_json_body(request)
        ops = body.get("ops") if isinstance(body, dict) else None
        if not isinstance(ops, list):
            raise ConnecApiError.single(400, 'The body must be {"sequential": true, "ops": [...]}')
        if len(ops) > MAX_BATCH_OPS:
            raise ConnecApiError.single(400, f"At most {MAX_BATCH_OPS} ops per batch")
    except ConnecApiError as error:
        return error_response(request, error)
    external_ids = wants_external_ids(request.headers)
    base_url = request.build_absolute_uri(request.path.rsplit("batch", 1)[0])
    results, changed = [], []
    for index, raw in enumerate(ops):
        try:
            operation = parse_batch_op(
                raw, index=index, external_ids=external_ids, base_url=base_url
            )
            with transaction.atomic(using=SANDBOX_DATABASE):
                outcome = execute(operation, app=app)
            changed.extend(outcome.changed)
            results.append({"status": outcome.status, "body": outcome.body})
        except ConnecApiError as error:
            results.append({"status": error.status, "body": error.body(href=request.path)})
        except Exception:
            # One op's bug must not lose the others' results.
            logger.exception("Connec! batch op %s failed", index, extra={"app": app.api_id})
            results.append(
                {"status": 500, "body": error_body(500, [Problem("Unexpected error in this op")])}
            )
    if changed:
        with transaction.atomic(using=SANDBOX_DATABASE):
            enqueue_changes(records=changed, source_app=app)
    return json_response(request, 200, {"results": results})
