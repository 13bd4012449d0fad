"""The OpenAPI 3 schema of the sandbox's Account API and Connec! API v2 (drf-spectacular).

Account API: one operation per resource and method, from the views of
:mod:`maestrano_sandbox.views.account_api`; the envelope and the objects are those of
:mod:`maestrano_sandbox.account_api` (docs/protocol.md, 'Account API'). Connec! API v2: one
operation per entity and method, and the batch (:mod:`maestrano_sandbox.connec.openapi`). Served at
``/sandbox/api/schema/`` (with a Swagger UI at ``/sandbox/api/schema/ui/``) and kept in
``docs/openapi/sandbox.yaml`` (``make openapi``).
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema

from maestrano_integration.platform_api import BasicAuthenticationScheme

from . import account_api
from .connec import openapi as connec_openapi
from .views import account_api as views_account_api

SETTINGS: dict[str, Any] = {
    "TITLE": "Maestrano sandbox: Account API and Connec! API v2",
    "DESCRIPTION": (
        "The emulated platform's APIs, with HTTP basic auth of a registered app's "
        "`api_id:api_key`. The Account API (docs/protocol.md, 'Account API') answers the "
        'envelope `{"success": bool, "errors": {field: [messages]}, "data": ...}`. The '
        "Connec! API v2 (docs/protocol.md, 'Connec! API v2') answers records keyed by their "
        'entity and refuses with `{"errors": [...]}`; it also answers at '
        "`/sandbox/api/v2/...` and `/sandbox/batch`."
    ),
    "VERSION": "1",
    "COMPONENT_SPLIT_REQUEST": False,
    "SORT_OPERATIONS": False,
}

_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_INT = {"type": "integer"}
#: Field types of the serialized objects (the rest are strings).
_TYPES: dict[str, dict[str, Any]] = {
    "price_cents": _INT,
    "frequency": _INT,
    "initial_cents": _INT,
    "cycles": {"type": "integer", "nullable": True},
    "has_credit_card": {"type": "boolean"},
    "created_at": _TIME,
    "updated_at": _TIME,
    "period_started_at": _TIME,
    "period_ended_at": _TIME,
    "start_date": _TIME,
    "free_trial_end_at": _TIME,
}
_FIELDS = {
    "bills": "object id group_id price_cents description currency units status "
    "period_started_at period_ended_at created_at updated_at",
    "recurring_bills": "object id group_id price_cents description currency period frequency "
    "cycles start_date initial_cents status created_at updated_at",
    "users": "object id name surname email company_name country created_at updated_at",
    "groups": "object id name email has_credit_card free_trial_end_at currency country city "
    "timezone created_at updated_at",
}


def _object_schema(resource: str) -> dict[str, Any]:
    fields = _FIELDS[resource].split()
    return {
        "type": "object",
        "properties": {name: _TYPES.get(name, _TEXT) for name in fields},
        "required": fields,
    }


_ERRORS = {"type": "object", "additionalProperties": {"type": "array", "items": _TEXT}}


def _envelope(data: dict[str, Any], **extra: dict[str, Any]) -> dict[str, Any]:
    properties = {"success": {"type": "boolean"}, "errors": _ERRORS, "data": data, **extra}
    return {"type": "object", "properties": properties, "required": list(properties)}


_REFUSAL = _envelope({"nullable": True, "enum": [None]})
_PAGINATION = {
    "type": "object",
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
        "next": {"type": "string", "nullable": True},
    },
    "required": ["total", "limit", "offset", "next"],
}


def _refusals(*codes: int) -> dict[int, Any]:
    return {code: _REFUSAL for code in codes}


#: An ISO 8601 time in a request; empty means none (the server's rule).
_WHEN = {"type": "string", "description": "ISO 8601 date-time; empty: none."}
_BILL_REQUEST = {
    "type": "object",
    "description": "The fields, flat or under `bill` (`recurring_bill`); form fields also work.",
    "properties": {
        "group_id": _TEXT,
        "price_cents": _INT,
        "description": _TEXT,
        "currency": _TEXT,
        "units": _TEXT,
        "period_started_at": _WHEN,
        "period_ended_at": _WHEN,
    },
    "required": ["group_id", "price_cents", "description"],
}
_RECURRING_BILL_REQUEST = {
    **_BILL_REQUEST,
    "properties": {
        "group_id": _TEXT,
        "price_cents": _INT,
        "description": _TEXT,
        "currency": _TEXT,
        "period": {"type": "string", "enum": ["Day", "Week", "SemiMonth", "Month", "Year"]},
        "frequency": _INT,
        "cycles": _INT,
        "initial_cents": _INT,
        "start_date": _WHEN,
    },
}
_PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        int,
        description=f"1 to {account_api.MAX_LIMIT} (default {account_api.DEFAULT_LIMIT}).",
    ),
    OpenApiParameter("offset", int, description="0 or more (default 0)."),
]
#: Bounds of the page parameters (added after generation: drf-spectacular keeps none).
_PAGE_BOUNDS = {
    "limit": {"minimum": 1, "maximum": account_api.MAX_LIMIT},
    "offset": {"minimum": 0, "maximum": account_api.MAX_OFFSET},
}
_BILL_EXAMPLE = {
    "group_id": "cld-1",
    "price_cents": 2900,
    "description": "Standard plan, March",
    "currency": "USD",
}


def _resource_views(
    name: str,
) -> tuple[type[views_account_api.Collection], type[views_account_api.Member]]:
    """The collection and member views of one resource, each with its schema."""
    resource = account_api.RESOURCES[name]
    item = _object_schema(name)
    tag = f"account {name}"
    collection: Any = type(
        f"{name.title().replace('_', '')}Collection",
        (views_account_api.Collection,),
        {
            "resource_name": name,
            "__doc__": views_account_api.Collection.__doc__,
            "operation_ids": {"GET": f"list_{name}", "POST": f"create_{resource.singular}"},
        },
    )
    collection = extend_schema(
        methods=["GET"],
        summary=f"List {name} (filters: any attribute, with suffixes such as `_in`, `_after`)",
        parameters=_PAGE_PARAMETERS,
        responses={
            200: _envelope({"type": "array", "items": item}, pagination=_PAGINATION),
            **_refusals(400, 401),
        },
        tags=[tag],
    )(collection)
    member: Any = type(
        f"{name.title().replace('_', '')}Member",
        (views_account_api.Member,),
        {
            "resource_name": name,
            "__doc__": views_account_api.Member.__doc__,
            "operation_ids": {
                "GET": f"get_{resource.singular}",
                "DELETE": f"cancel_{resource.singular}",
            },
        },
    )
    member = extend_schema(
        methods=["GET"],
        summary=f"Get one of {name}",
        parameters=[OpenApiParameter("uid", str, OpenApiParameter.PATH)],
        responses={200: _envelope(item), **_refusals(400, 401, 404)},
        tags=[tag],
    )(member)
    if resource.writable:
        request = _BILL_REQUEST if name == "bills" else _RECURRING_BILL_REQUEST
        collection = extend_schema(
            methods=["POST"],
            summary=f"Create one of {name}",
            request={"application/json": request, "application/x-www-form-urlencoded": request},
            responses={201: _envelope(item), **_refusals(400, 401, 415, 422)},
            examples=[OpenApiExample("A bill", value=_BILL_EXAMPLE, request_only=True)],
            tags=[tag],
        )(collection)
        member = extend_schema(
            methods=["DELETE"],
            summary=f"Cancel one of {name}",
            parameters=[OpenApiParameter("uid", str, OpenApiParameter.PATH)],
            responses={200: _envelope(item), **_refusals(400, 401, 404, 422)},
            tags=[tag],
        )(member)
    else:
        collection.http_method_names = ["get"]
        member.http_method_names = ["get"]
    return collection, member


def account_urlpatterns(prefix: str = "sandbox/api/v1/account/") -> list[URLPattern]:
    """One pattern per resource and its members, each view carrying its schema."""
    patterns = []
    for name in account_api.RESOURCES:
        collection, member = _resource_views(name)
        patterns.append(path(f"{prefix}{name}", collection.as_view()))
        patterns.append(path(f"{prefix}{name}/<str:uid>", member.as_view()))
    return patterns


def sandbox_schema() -> dict[str, Any]:
    patterns = account_urlpatterns() + connec_openapi.connec_urlpatterns()
    with patched_settings(SETTINGS):
        schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    bounds = {**_PAGE_BOUNDS, **connec_openapi.PARAMETER_BOUNDS}
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"].update(bounds.get(parameter["name"], {}))
    schema["components"]["schemas"] = {
        **schema["components"].get("schemas", {}),
        **connec_openapi.components(),
    }
    return schema


def render_yaml(schema: dict[str, Any]) -> str:
    with patched_settings(SETTINGS):
        return OpenApiYamlRenderer().render(schema, renderer_context={}).decode()


class AppAuthenticationScheme(BasicAuthenticationScheme):
    target_class = "maestrano_sandbox.auth.AppAuthentication"
    description = "A registered app's `api_id` as user, `api_key` as password."
