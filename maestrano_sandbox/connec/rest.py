"""The Connec! API v2 over HTTP (docs/protocol.md, 'Connec! API v2'): Django REST framework views.

Everything the views share is set once on :class:`ConnecApiView`:

* authentication: HTTP basic auth of a registered app
  (:class:`maestrano_sandbox.auth.AppAuthentication`, constant time), else a 401 with
  ``WWW-Authenticate: Basic realm="connec"``;
* :class:`ConnecJSONParser`: strict JSON (:mod:`maestrano_integration.strict_input`)
  whatever the declared media type, within the project's body limit (413);
* renderers: ``application/vnd.api+json`` when the request's ``Accept`` or ``Content-Type``
  names it, else ``application/json`` (:class:`ConnecNegotiation`), never a 406;
* :func:`connec_exception_handler`: every refusal and failure in the Connec! error
  envelope ``{"errors": [{"id", "href", "status", "code", "title", "detail"}]}``.

The views only turn the request into an :class:`~maestrano_sandbox.connec.api.Operation` (or a
batch's ops) and answer what :mod:`maestrano_sandbox.connec.api` returns; ``$filter``,
``$orderby``, ``$top`` and ``$skip`` are the filter backends and pagination class of
:mod:`maestrano_sandbox.connec.queries`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.signals import got_request_exception
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from maestrano_integration.connec_wire import EXTERNAL_IDS_HEADER, MAX_BATCH_OPS, MEDIA_TYPE
from maestrano_integration.platform_api import (
    PlatformAutoSchema,
    PlatformJSONRenderer,
    StrictJSONParser,
    default_max_body_bytes,
)
from maestrano_sandbox.auth import AppAuthentication, IsApp

from .api import Operation, answer_batch, run_and_notify
from .errors import ConnecApiError

logger = logging.getLogger(__name__)

REALM = 'Basic realm="connec"'


class ConnecJSONParser(StrictJSONParser):
    """Strict JSON whatever the ``Content-Type`` says (Connec! clients send JSON as
    ``application/json``, ``application/vnd.api+json`` or nothing at all)."""

    media_type = "*/*"


class ConnecJSONRenderer(PlatformJSONRenderer):
    media_type = "application/json"


class JSONAPIRenderer(PlatformJSONRenderer):
    media_type = MEDIA_TYPE


class ConnecNegotiation(BaseContentNegotiation):
    """Answer in kind: JSON:API when the request's ``Accept`` or ``Content-Type`` names it."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0]

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        named = request.META.get("HTTP_ACCEPT", "") + request.META.get("CONTENT_TYPE", "")
        renderer = renderers[1] if MEDIA_TYPE in named else renderers[0]
        return renderer, renderer.media_type


def unauthorized() -> ConnecApiError:
    return ConnecApiError.single(401, "Invalid or missing API credentials (HTTP basic api id:key)")


def as_connec_error(exc: Exception, view: Any, request: Any) -> ConnecApiError | None:
    """``exc`` as the hub's error, or ``None`` for an unexpected exception."""
    if isinstance(exc, ConnecApiError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return unauthorized()
    if isinstance(exc, exceptions.MethodNotAllowed):
        return ConnecApiError.single(405, view.method_not_allowed_detail(request.method))
    if isinstance(exc, Http404):
        return ConnecApiError.single(404, str(exc) or "Not found")
    if isinstance(exc, exceptions.APIException):
        return ConnecApiError.single(exc.status_code, str(exc.detail))
    return None


def connec_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every refusal (4xx) and failure (5xx) of the API in the Connec! error envelope."""
    request, view = context["request"], context["view"]
    error = as_connec_error(exc, view, request)
    if error is None:
        logger.exception("Unexpected error in the Connec! API", extra={"path": request.path})
        got_request_exception.send(sender=None, request=request._request)
        error = ConnecApiError.single(500, "Unexpected error")
    set_rollback()
    response = Response(error.body(href=request.path), status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = REALM
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        response["Retry-After"] = str(int(wait))
    return response


class ConnecApiView(APIView):
    """Base of the Connec! API views: the app's credentials, strict JSON in, JSON (or
    JSON:API) out, the Connec! error envelope; nothing of a project's ``REST_FRAMEWORK``."""

    authentication_classes = [AppAuthentication]
    permission_classes = [IsApp]
    parser_classes = [ConnecJSONParser]
    renderer_classes = [ConnecJSONRenderer, JSONAPIRenderer]
    content_negotiation_class = ConnecNegotiation
    throttle_classes: list[Any] = []
    versioning_class = None
    metadata_class = None
    schema = PlatformAutoSchema()

    def get_exception_handler(self) -> Any:
        return connec_exception_handler

    def get_authenticate_header(self, request: Any) -> str:
        return REALM

    def method_not_allowed_detail(self, method: str) -> str:
        return f"{method} is not supported on this URL"

    def max_body_bytes(self) -> int:
        return default_max_body_bytes()

    def external_ids(self) -> bool:
        value = str(self.request.headers.get(EXTERNAL_IDS_HEADER, ""))
        return value.strip().lower() in ("true", "1")


class EntityView(ConnecApiView):
    """``/api/v2/<group_id>/<entity>[/<id>]``: list, retrieve, create, update."""

    http_method_names = ["get", "post", "put"]

    def setup(self, request: Any, *args: Any, **kwargs: Any) -> None:
        # The methods of this URL (DRF answers the others 405, with their Allow header):
        # a record is read and updated; a collection listed and added to; the company
        # singleton read and written without an id.
        super().setup(request, *args, **kwargs)
        if kwargs.get("record_id") is not None:
            self.http_method_names = ["get", "put"]
        elif kwargs.get("entity") != "company":
            self.http_method_names = ["get", "post"]

    def get(self, request: Any, **kwargs: Any) -> Response:
        return self.answer(request, body=None, **kwargs)

    def post(self, request: Any, **kwargs: Any) -> Response:
        return self.answer(request, body=request.data, **kwargs)

    def put(self, request: Any, **kwargs: Any) -> Response:
        return self.answer(request, body=request.data, **kwargs)

    def answer(
        self, request: Any, *, body: Any, group_id: str, entity: str, record_id: str | None = None
    ) -> Response:
        collection = request.path.rsplit("/" + record_id, 1)[0] if record_id else request.path
        operation = Operation(
            method=request.method,
            group_uid=group_id,
            entity=entity,
            record_id=record_id,
            query=request.query_params.dict(),
            body=body,
            external_ids=self.external_ids(),
            collection_url=request.build_absolute_uri(collection),
        )
        outcome = run_and_notify(operation, app=request.auth)
        return Response(outcome.body, status=outcome.status)


class BatchSerializer(serializers.Serializer):
    """``{"sequential": true, "ops": [...]}``: at most :data:`MAX_BATCH_OPS` ops, each
    checked on its own when it runs (a bad op fails alone)."""

    # DRF formats these messages: the braces of the shape are doubled.
    SHAPE = 'The body must be {{"sequential": true, "ops": [...]}}'
    default_error_messages = {"invalid": SHAPE, "null": SHAPE}

    sequential = serializers.JSONField(required=False)  # always honoured, whatever it says
    ops = serializers.ListField(
        max_length=MAX_BATCH_OPS,
        error_messages={
            "required": SHAPE,
            "null": SHAPE,
            "not_a_list": SHAPE,
            "max_length": f"At most {MAX_BATCH_OPS} ops per batch",
        },
    )

    def validated_ops(self) -> list[Any]:
        """The ops, or the first problem as a 400."""
        if not self.is_valid():
            problems = [str(m) for messages in self.errors.values() for m in messages]
            raise ConnecApiError.single(400, problems[0])
        return self.validated_data["ops"]


class BatchView(ConnecApiView):
    """``POST /batch``: ops applied one after the other, each succeeding or failing alone
    (:func:`maestrano_sandbox.connec.api.answer_batch`)."""

    http_method_names = ["post"]

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        # The method before the credentials, as the endpoint always answered.
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def method_not_allowed_detail(self, method: str) -> str:
        return "The batch endpoint only accepts POST"

    def post(self, request: Any) -> Response:
        ops = BatchSerializer(data=request.data).validated_ops()
        results = answer_batch(
            ops,
            app=request.auth,
            external_ids=self.external_ids(),
            base_url=request.build_absolute_uri(request.path.rsplit("batch", 1)[0]),
            href=request.path,
        )
        return Response({"results": results})


entity_view = EntityView.as_view()
batch_view = BatchView.as_view()
