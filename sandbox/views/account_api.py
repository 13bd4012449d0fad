"""Account API views (docs/protocol.md, 'Account API'): the envelope, basic auth, and HTTP →
``account_api`` calls.

Every answer is ``{"success": bool, "errors": {field: [messages]}, "data": ...}``;
lists add ``"pagination": {"total", "limit", "offset", "next"}``. Status codes:
200 (read, cancel), 201 (create), 400 (unreadable body, bad filter), 401 (bad
credentials), 404 (unknown id), 405 (method), 422 (validation or state).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from maestrano_integration import strict_input

from .. import account_api
from ..auth import authenticate_app

MAX_BODY_BYTES = 64 * 1024


def envelope(
    *, data: Any = None, errors: dict[str, list[str]] | None = None, status: int = 200, **extra: Any
) -> JsonResponse:
    body = {"success": not errors, "errors": errors or {}, "data": data, **extra}
    return JsonResponse(body, status=status)


def _error(error: account_api.AccountApiError) -> JsonResponse:
    return envelope(errors=error.errors, status=error.status)


def _unauthorized() -> JsonResponse:
    response = envelope(errors={"authentication": ["Invalid API token"]}, status=401)
    response["WWW-Authenticate"] = 'Basic realm="maestrano"'
    return response


def _method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = envelope(
        errors={"method": [f"{request.method} is not allowed here; use {', '.join(allowed)}."]},
        status=405,
    )
    response["Allow"] = ", ".join(allowed)
    return response


def _unknown_resource(resource: str) -> JsonResponse:
    known = ", ".join(account_api.RESOURCES)
    return envelope(errors={"resource": [f"No resource {resource!r}; use {known}."]}, status=404)


def _payload(request: HttpRequest) -> Any:
    """The JSON (strict: :mod:`maestrano_integration.strict_input`) or form body."""
    if len(request.body) > MAX_BODY_BYTES:
        raise account_api.AccountApiError(400, {"body": ["The request body is too large."]})
    content_type = request.content_type or ""
    try:
        if "json" in content_type or (request.body and request.body.lstrip()[:1] in (b"{", b"[")):
            return strict_input.loads(request.body or b"{}")
        strict_input.check_texts(request.POST.items(), what="field")
    except strict_input.InputRefused as error:
        raise account_api.AccountApiError(
            400, {"body": [f"The request body is refused: {error}."]}
        ) from None
    return request.POST.dict()


def _check_request_texts(request: HttpRequest, **url_values: str) -> None:
    """Ids in the URL and query parameters must be text a database can look up (400)."""
    try:
        strict_input.check_texts(url_values, what="URL id")
        strict_input.check_texts(request.GET.items(), what="query parameter")
    except strict_input.InputRefused as error:
        raise account_api.AccountApiError(400, {"request": [f"{error}."]}) from None


def _next_url(request: HttpRequest, page: account_api.Page) -> str | None:
    if page.offset + page.limit >= page.total:
        return None
    query = request.GET.copy()
    query["offset"] = str(page.offset + page.limit)
    query["limit"] = str(page.limit)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


@csrf_exempt
def collection(request: HttpRequest, resource: str) -> JsonResponse:
    """``GET`` list (filters, pagination) and ``POST`` create (bills, recurring bills)."""
    config = account_api.RESOURCES.get(resource)
    if config is None:
        return _unknown_resource(resource)
    app = authenticate_app(request)
    if app is None:
        return _unauthorized()
    allowed = ["GET", "POST"] if config.writable else ["GET"]
    if request.method not in allowed:
        return _method_not_allowed(request, allowed)
    try:
        _check_request_texts(request)
        if request.method == "GET":
            page = account_api.list_objects(app=app, resource=config, params=request.GET.dict())
            return envelope(
                data=page.data,
                pagination={
                    "total": page.total,
                    "limit": page.limit,
                    "offset": page.offset,
                    "next": _next_url(request, page),
                },
            )
        create = (
            account_api.create_bill if resource == "bills" else account_api.create_recurring_bill
        )
        created = create(app=app, payload=_payload(request))
        return envelope(data=config.serialize(created), status=201)
    except account_api.AccountApiError as error:
        return _error(error)


@csrf_exempt
def member(request: HttpRequest, resource: str, uid: str) -> JsonResponse:
    """``GET /<id>`` retrieve and ``DELETE /<id>`` cancel (bills, recurring bills)."""
    config = account_api.RESOURCES.get(resource)
    if config is None:
        return _unknown_resource(resource)
    app = authenticate_app(request)
    if app is None:
        return _unauthorized()
    allowed = ["GET", "DELETE"] if config.writable else ["GET"]
    if request.method not in allowed:
        return _method_not_allowed(request, allowed)
    try:
        _check_request_texts(request, id=uid)
        if request.method == "GET":
            found = account_api.get_object(app=app, resource=config, uid=uid)
        else:
            found = account_api.cancel(app=app, resource=config, uid=uid)
        return envelope(data=config.serialize(found))
    except account_api.AccountApiError as error:
        return _error(error)
