"""The OpenAPI 3 description of the sandbox's Connec! API v2 (drf-spectacular), part of
docs/openapi/sandbox.yaml (:mod:`maestrano_sandbox.schema`).

One operation per entity and method, from the views of :mod:`maestrano_sandbox.connec.rest`; the
records' fields are the rules of :mod:`maestrano_sandbox.connec.schema` (``FieldType.openapi``), the
examples those of docs/protocol.md ('Connec! API v2').
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema

from maestrano_integration.connec_wire import EXTERNAL_IDS_HEADER, MAX_BATCH_OPS, MEDIA_TYPE
from maestrano_sandbox.models import CONNEC_ENTITIES

from . import queries, rest
from .schema import ID_LIST, SCHEMAS, object_openapi

PREFIX = "sandbox/connec/"
COLLECTIONS = [e for e in CONNEC_ENTITIES if e != "company"]
_REF = "#/components/schemas/"
_TEXT = {"type": "string"}
#: The fields the hub adds to every record it answers.
_ENVELOPE_FIELDS: dict[str, dict[str, Any]] = {
    "id": {"anyOf": [_TEXT, ID_LIST], "description": "Connec! id, or external ids (header)."},
    "group_id": _TEXT,
    "channel_id": _TEXT,
    "resource_type": _TEXT,
    "created_at": _TEXT,
    "updated_at": _TEXT,
}
_OPTS = {
    "type": "object",
    "description": "`matching_fields`: smart merging (docs/protocol.md, 'Smart merging').",
    "properties": {"matching_fields": {"type": "array", "items": _TEXT}},
    "additionalProperties": True,
}
_ERROR = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": _TEXT,
                    "href": _TEXT,
                    "status": _TEXT,
                    "code": _TEXT,
                    "title": _TEXT,
                    "detail": _TEXT,
                    "source": {"type": "object", "properties": {"pointer": _TEXT}},
                },
                "required": ["id", "href", "status", "code", "title", "detail"],
            },
        }
    },
    "required": ["errors"],
}
_PAGINATION = {
    "type": "object",
    "properties": {
        "skip": {"type": "integer", "minimum": 0},
        "top": {"type": "integer", "minimum": 1, "maximum": queries.MAX_TOP},
        "total": {"type": "integer", "minimum": 0},
        "next": _TEXT,
        "previous": _TEXT,
    },
    "required": ["skip", "top", "total"],
}


def record_name(entity: str) -> str:
    return f"Connec{entity.title()}"


def _envelope(entity: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {entity: schema}, "required": [entity]}


def components() -> dict[str, Any]:
    """``Connec<Entity>`` (a record as answered), ``Connec<Entity>Input`` (as written),
    ``ConnecErrors``: added to the generated schema's components."""
    schemas: dict[str, Any] = {"ConnecErrors": _ERROR, "ConnecBatch": _BATCH_REQUEST}
    schemas["ConnecBatchResults"] = _BATCH_RESPONSE
    schemas["ConnecPagination"] = _PAGINATION
    for entity, rules in SCHEMAS.items():
        fields = object_openapi(rules.fields)
        name = record_name(entity)
        schemas[f"{name}One"] = _envelope(entity, _ref(name))
        schemas[f"{name}Write"] = _envelope(entity, _ref(f"{name}Input"))
        if entity in COLLECTIONS:
            page = _envelope(entity, {"type": "array", "items": _ref(name)})
            page["properties"]["pagination"] = _ref("ConnecPagination")
            page["required"].append("pagination")
            schemas[f"{name}Page"] = page
        schemas[record_name(entity)] = {
            **fields,
            "properties": {**_ENVELOPE_FIELDS, **fields["properties"]},
            "required": list(_ENVELOPE_FIELDS),
        }
        schemas[f"{record_name(entity)}Input"] = {
            **fields,
            "properties": {
                "id": {**_ENVELOPE_FIELDS["id"], "description": "Your external id: an upsert."},
                **fields["properties"],
                "opts": _OPTS,
            },
        }
    return schemas


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _one(entity: str) -> dict[str, str]:
    return _ref(f"{record_name(entity)}One")


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """A request body in both media types the API reads."""
    return {"application/json": schema, MEDIA_TYPE: schema}


def _refusals(*codes: int) -> dict[int, Any]:
    return {code: _ref("ConnecErrors") for code in codes}


_GROUP = OpenApiParameter("group_id", str, OpenApiParameter.PATH, description="The group's uid.")
_ID = OpenApiParameter(
    "id",
    str,
    OpenApiParameter.PATH,
    description=(
        "The record's Connec! id, or your id with opts[provider] and opts[realm]; one "
        "percent-encoded path segment (Q?x=1 is Q%3Fx%3D1). An id holding / is served "
        "by batch ops only."
    ),
)
_EXTERNAL_IDS = OpenApiParameter(
    EXTERNAL_IDS_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="`true`: ids and references as external-id lists (docs/protocol.md).",
)
_LIST_PARAMETERS = [
    OpenApiParameter(
        "$top",
        int,
        description=f"Page size: default {queries.DEFAULT_TOP}, larger than "
        f"{queries.MAX_TOP} is {queries.MAX_TOP}.",
    ),
    OpenApiParameter("$skip", int, description="Records to skip (default 0)."),
    OpenApiParameter(
        "$filter",
        str,
        description="Conditions joined by `and` (docs/protocol.md, 'Filters').",
        examples=[
            OpenApiExample("Changed since", value="updated_at gt '2016-10-04T00:00:00Z'"),
            OpenApiExample("By code", value="code eq 'PE1'"),
        ],
    ),
    OpenApiParameter(
        "$orderby",
        str,
        description="`<field> [asc|desc]`, comma separated.",
        examples=[OpenApiExample("Oldest change first", value="updated_at asc")],
    ),
]
#: Bounds of the list parameters (added after generation: drf-spectacular keeps none).
PARAMETER_BOUNDS = {
    "$top": {"minimum": 1, "maximum": queries.MAX_SKIP},
    "$skip": {"minimum": 0, "maximum": queries.MAX_SKIP},
}
_BY_EXTERNAL_ID = [
    OpenApiParameter("opts[provider]", str, description="Read by your id: your provider."),
    OpenApiParameter("opts[realm]", str, description="Read by your id: your realm."),
]
#: A write of each entity, from docs/protocol.md.
_WRITE_EXAMPLES = {
    "organizations": {"organizations": {"name": "Acme Corp", "is_customer": True}},
    "people": {"people": {"first_name": "Ada", "last_name": "Lovelace"}},
    "items": {"items": {"code": "IT1", "name": "Widget", "sale_price": {"net_amount": 10}}},
    "invoices": {"invoices": {"type": "CUSTOMER", "lines": [{"description": "New"}]}},
    "company": {"company": {"name": "Acme", "currency": "AUD"}},
}
_BATCH_EXAMPLE = {
    "sequential": True,
    "ops": [
        {
            "method": "post",
            "url": "/api/v2/cld-1/people",
            "params": {"people": {"first_name": "Ada"}},
        },
        {"method": "get", "url": "/api/v2/cld-1/people", "params": {"$top": 1}},
    ],
}
_BATCH_REQUEST = {
    "type": "object",
    "properties": {
        "sequential": {"type": "boolean", "description": "Always honoured."},
        "ops": {
            "type": "array",
            "maxItems": MAX_BATCH_OPS,
            "items": {
                "type": "object",
                "properties": {
                    "method": {"type": "string", "enum": ["get", "post", "put"]},
                    "url": {"type": "string", "example": "/api/v2/cld-1/people"},
                    "params": {"type": "object", "additionalProperties": True},
                },
                "required": ["method", "url"],
            },
        },
    },
    "required": ["ops"],
}
_BATCH_RESPONSE = {
    "type": "object",
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "status": {"type": "integer"},
                    "body": {"type": "object", "additionalProperties": True},
                },
                "required": ["status", "body"],
            },
        }
    },
    "required": ["results"],
}


def _view(base: type, name: str, operation_ids: dict[str, str]) -> Any:
    attributes = {"__doc__": base.__doc__, "operation_ids": operation_ids}
    return type(name, (base,), {**attributes, "request_body_required": True})


def _entity_views(entity: str) -> tuple[Any, Any]:
    """The collection and record views of one entity, each with its schema."""
    tag = f"connec {entity}"
    example = [OpenApiExample("protocol.md", value=_WRITE_EXAMPLES[entity], request_only=True)]
    collection = _view(
        rest.EntityView,
        f"Connec{entity.title()}Collection",
        {"GET": f"list_connec_{entity}", "POST": f"create_connec_{entity}"},
    )
    collection = extend_schema(
        methods=["GET"],
        summary=f"List {entity} (`$top`, `$skip`, `$filter`, `$orderby`)",
        parameters=[_GROUP, *_LIST_PARAMETERS, _EXTERNAL_IDS],
        responses={
            200: _ref(f"{record_name(entity)}Page"),
            **_refusals(400, 401, 404, 429),
        },
        tags=[tag],
    )(collection)
    collection = extend_schema(
        methods=["POST"],
        summary=f"Create one of {entity} (200: merged into a record, or an upsert by external id)",
        parameters=[_GROUP, _EXTERNAL_IDS],
        request=_body(_ref(f"{record_name(entity)}Write")),
        responses={
            201: _one(entity),
            200: _one(entity),
            **_refusals(400, 401, 404, 409, 413, 422, 429),
        },
        examples=example,
        tags=[tag],
    )(collection)
    record = _view(
        rest.EntityView,
        f"Connec{entity.title()}Record",
        {"GET": f"get_connec_{entity}", "PUT": f"update_connec_{entity}"},
    )
    record = extend_schema(
        methods=["GET"],
        summary=f"Get one of {entity} (by Connec! id, or by your id with `opts[...]`)",
        parameters=[_GROUP, _ID, *_BY_EXTERNAL_ID, _EXTERNAL_IDS],
        responses={200: _one(entity), **_refusals(400, 401, 404, 429)},
        tags=[tag],
    )(record)
    record = extend_schema(
        methods=["PUT"],
        summary=f"Update one of {entity} (fields merged; invoice lines keep their ids)",
        parameters=[_GROUP, _ID, _EXTERNAL_IDS],
        request=_body(_ref(f"{record_name(entity)}Write")),
        responses={200: _one(entity), **_refusals(400, 401, 404, 409, 413, 422, 429)},
        examples=example,
        tags=[tag],
    )(record)
    record.http_method_names = ["get", "put"]
    collection.http_method_names = ["get", "post"]
    return collection, record


def _company_view() -> Any:
    view = _view(
        rest.EntityView,
        "ConnecCompany",
        {
            "GET": "get_connec_company",
            "PUT": "update_connec_company",
            "POST": "write_connec_company",
        },
    )
    view = extend_schema(
        methods=["GET"],
        summary="Get the group's company (created on first read)",
        parameters=[_GROUP, _EXTERNAL_IDS],
        responses={200: _one("company"), **_refusals(400, 401, 404, 429)},
        tags=["connec company"],
    )(view)
    for method, summary in (("PUT", "Update"), ("POST", "Update (as PUT)")):
        view = extend_schema(
            methods=[method],
            summary=f"{summary} the group's company",
            parameters=[_GROUP, _EXTERNAL_IDS],
            request=_body(_ref("ConnecCompanyWrite")),
            responses={200: _one("company"), **_refusals(400, 401, 404, 409, 413, 422, 429)},
            examples=[
                OpenApiExample("protocol.md", value=_WRITE_EXAMPLES["company"], request_only=True)
            ],
            tags=["connec company"],
        )(view)
    view.http_method_names = ["get", "put", "post"]
    return view


def _batch_view() -> Any:
    view = _view(rest.BatchView, "ConnecBatch", {"POST": "connec_batch"})
    return extend_schema(
        methods=["POST"],
        summary=f"Run up to {MAX_BATCH_OPS} ops, one after the other, each on its own",
        parameters=[_EXTERNAL_IDS],
        request=_body(_ref("ConnecBatch")),
        responses={200: _ref("ConnecBatchResults"), **_refusals(400, 401, 413, 429)},
        examples=[OpenApiExample("protocol.md", value=_BATCH_EXAMPLE, request_only=True)],
        tags=["connec batch"],
    )(view)


def connec_urlpatterns(prefix: str = PREFIX) -> list[URLPattern]:
    """One pattern per entity's collection and records, the company and the batch."""
    patterns = []
    for entity in COLLECTIONS:
        collection, record = _entity_views(entity)
        patterns.append(path(f"{prefix}api/v2/<str:group_id>/{entity}", collection.as_view()))
        patterns.append(path(f"{prefix}api/v2/<str:group_id>/{entity}/<str:id>", record.as_view()))
    patterns.append(path(f"{prefix}api/v2/<str:group_id>/company", _company_view().as_view()))
    patterns.append(path(f"{prefix}batch", _batch_view().as_view()))
    return patterns
