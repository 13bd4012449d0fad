"""Account API views (docs/protocol.md, 'Account API'): DRF views for the envelope, basic auth,
and HTTP → ``account_api`` calls.

Every answer is ``{"success": bool, "errors": {field: [messages]}, "data": ...}``;
lists add ``"pagination": {"total", "limit", "offset", "next"}``. Status codes:
200 (read, cancel), 201 (create), 400 (unreadable body, bad filter), 401 (bad
credentials), 404 (unknown id), 405 (method), 415 (media type), 422 (validation or
state). Authentication, parsers, renderer and error body are set on
:class:`AccountApiView`, so nothing of a project's ``REST_FRAMEWORK`` applies.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from maestrano_integration import strict_input
from maestrano_integration.platform_api import (
    FirstRendererNegotiation,
    PlatformAutoSchema,
    PlatformJSONRenderer,
)

from .. import account_api
from ..auth import AppAuthentication, IsApp
from ..models import RegisteredApp

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
REALM = 'Basic realm="maestrano"'


def envelope(
    *, data: Any = None, errors: dict[str, list[str]] | None = None, status: int = 200, **extra: Any
) -> Response:
    body = {"success": not errors, "errors": errors or {}, "data": data, **extra}
    return Response(body, status=status)


class AccountApiRefusal(exceptions.APIException):
    """An :class:`account_api.AccountApiError` as a DRF exception (its status and errors)."""

    def __init__(self, status: int, errors: dict[str, list[str]]) -> None:
        super().__init__(detail=str(errors))
        self.status_code = status
        self.errors = errors


def _read(stream: Any, request: Any) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
    if declared > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
        raise AccountApiRefusal(400, {"body": ["The request body is too large."]})
    return body


def _refused(error: strict_input.InputRefused) -> AccountApiRefusal:
    return AccountApiRefusal(400, {"body": [f"The request body is refused: {error}."]})


class StrictJSONBodyParser(BaseParser):
    """JSON within :data:`MAX_BODY_BYTES`, parsed by :func:`strict_input.loads`."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        body = _read(stream, parser_context["request"])
        try:
            return strict_input.loads(body or b"{}")
        except strict_input.InputRefused as error:
            raise _refused(error) from None


class StrictFormParser(BaseParser):
    """A form whose names and values are UTF-8 text a database can store (no NUL, no lone
    surrogate)."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        from django.http import QueryDict

        body = _read(stream, parser_context["request"])
        try:
            # Strictly UTF-8: QueryDict alone would store U+FFFD for what is not.
            strict_input.check_form_body(body)
            form = QueryDict(body, encoding="utf-8")
            strict_input.check_texts(form.items(), what="field")
        except strict_input.InputRefused as error:
            raise _refused(error) from None
        return form.dict()


def account_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every refusal in the envelope: ``{"success": false, "errors": {...}, "data": null}``."""
    if isinstance(exc, account_api.AccountApiError):
        exc = AccountApiRefusal(exc.status, exc.errors)
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Account API error", extra={"path": context["request"].path})
        return envelope(errors={"server": ["Internal error."]}, status=500)
    request = context["request"]
    if isinstance(exc, AccountApiRefusal):
        errors = exc.errors
    elif isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        errors = {"authentication": ["Invalid API token"]}
    elif isinstance(exc, exceptions.MethodNotAllowed):
        allowed = response.get("Allow") or ", ".join(context["view"].allowed_methods)
        errors = {"method": [f"{request.method} is not allowed here; use {allowed}."]}
    elif isinstance(exc, exceptions.UnsupportedMediaType | exceptions.ParseError):
        errors = {"body": [str(getattr(exc, "detail", exc))]}
    else:
        errors = {"request": [str(getattr(exc, "detail", exc))]}
    refused = envelope(errors=errors, status=response.status_code)
    for header, value in response.items():
        if header.lower() in {"www-authenticate", "retry-after", "allow"}:
            refused[header] = value
    return refused


class AccountApiView(APIView):
    """Base of the Account API views: the app's credentials, strict JSON or form bodies,
    the envelope for every answer."""

    authentication_classes = [AppAuthentication]
    permission_classes = [IsApp]
    parser_classes = [StrictJSONBodyParser, StrictFormParser]
    renderer_classes = [PlatformJSONRenderer]
    content_negotiation_class = FirstRendererNegotiation
    throttle_classes: list[Any] = []
    versioning_class = None
    metadata_class = None
    schema = PlatformAutoSchema()
    resource_name = ""
    operation_id: str | None = None

    @property
    def app(self) -> RegisteredApp:
        return cast(RegisteredApp, self.request.auth)  # AppAuthentication's, IsApp required

    @property
    def known_resource(self) -> account_api.Resource:
        """The URL's resource, for the handlers: ``initial`` refused any other (404)."""
        assert self.resource is not None
        return self.resource

    def setup(self, request: Any, *args: Any, **kwargs: Any) -> None:
        # Before dispatch: DRF computes the Allow header from http_method_names there.
        super().setup(request, *args, **kwargs)
        self.resource = account_api.RESOURCES.get(self.resource_name or kwargs.get("resource", ""))
        if self.resource is not None and not self.resource.writable:
            self.http_method_names = ["get"]

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        # An unknown resource is a 404 before anything else (as the platform answers).
        if self.resource is None:
            known = ", ".join(account_api.RESOURCES)
            raise AccountApiRefusal(
                404, {"resource": [f"No resource {kwargs.get('resource')!r}; use {known}."]}
            )
        super().initial(request, *args, **kwargs)
        try:
            strict_input.check_texts({k: v for k, v in kwargs.items() if k == "uid"}, what="URL id")
            strict_input.check_texts(request.GET.items(), what="query parameter")
        except strict_input.InputRefused as error:
            raise AccountApiRefusal(400, {"request": [f"{error}."]}) from None

    def get_exception_handler(self) -> Any:
        return account_exception_handler

    def get_authenticate_header(self, request: Any) -> str:
        return REALM


def _next_url(request: Any, page: account_api.Page) -> str | None:
    if page.offset + page.limit >= page.total:
        return None
    query = request.GET.copy()
    query["offset"] = str(page.offset + page.limit)
    query["limit"] = str(page.limit)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


class Collection(AccountApiView):
    """``GET`` list (filters, pagination) and ``POST`` create (bills, recurring bills)."""

    http_method_names = ["get", "post"]

    def get(self, request: Any, resource: str = "") -> Response:
        page = account_api.list_objects(
            app=self.app, resource=self.known_resource, params=request.GET.dict()
        )
        return envelope(
            data=page.data,
            pagination={
                "total": page.total,
                "limit": page.limit,
                "offset": page.offset,
                "next": _next_url(request, page),
            },
        )

    def post(self, request: Any, resource: str = "") -> Response:
        create = (
            account_api.create_bill
            if self.known_resource.name == "bills"
            else account_api.create_recurring_bill
        )
        created = create(app=self.app, payload=request.data)
        return envelope(data=self.known_resource.serialize(created), status=201)


class Member(AccountApiView):
    """``GET /<id>`` retrieve and ``DELETE /<id>`` cancel (bills, recurring bills)."""

    http_method_names = ["get", "delete"]

    def get(self, request: Any, uid: str, resource: str = "") -> Response:
        found = account_api.get_object(app=self.app, resource=self.known_resource, uid=uid)
        return envelope(data=self.known_resource.serialize(found))

    def delete(self, request: Any, uid: str, resource: str = "") -> Response:
        found = account_api.cancel(app=self.app, resource=self.known_resource, uid=uid)
        return envelope(data=self.known_resource.serialize(found))


collection = Collection.as_view()
member = Member.as_view()
