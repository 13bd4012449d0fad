"""The one Django REST framework layer of every endpoint the platform calls.

The metadata endpoint, the account webhooks and the Connec! notifications webhook
are :class:`PlatformAPIView` subclasses. Everything they share is here, once:

* :class:`PlatformBasicAuthentication`: HTTP basic ``api.id:api.key`` of the preset
  the URL names (:mod:`maestrano_integration.auth`, constant time); an unknown
  preset is a 404, wrong credentials a 401;
* :class:`StrictJSONParser`: the body limit of the view (413) and the strict JSON
  rules of :mod:`maestrano_integration.strict_input` (400: NaN, Infinity, NUL,
  lone surrogates, deep nesting...); other media types are a 415;
* :func:`platform_exception_handler`: every 4xx and 5xx answered as
  ``{"error": "<message>"}``, the body the endpoints have always answered;
* :class:`PlatformThrottle`: DRF's scoped throttling, per preset, at the rates of
  ``MAESTRANO["THROTTLE_RATES"]`` (or ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``),
  counted per fixed window by django-ratelimit.

The apps are added to projects that may have their own DRF APIs and their own
``REST_FRAMEWORK`` settings: every choice is a class attribute of
:class:`PlatformAPIView`, so neither side changes the other.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.conf import global_settings, settings
from django.contrib.auth.models import AnonymousUser
from django.core.signals import got_request_exception
from django.http import Http404
from django_ratelimit.core import get_usage
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from . import strict_input
from .auth import blocked_seconds, credentials_match, parse_basic_authorization, record_refused
from .conf import ImproperlyConfiguredPreset, Preset, get_preset, maestrano_settings
from .setting_types import InvalidSettingType, log_once

logger = logging.getLogger(__name__)
#: Refused credentials are logged where they always were (alerts and dashboards read it).
auth_logger = logging.getLogger("maestrano_integration.auth")

#: ``WWW-Authenticate`` of a refused platform call.
REALM = 'Basic realm="maestrano"'


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is too large"
    default_code = "request_too_large"


class TooManyRefusedAuthentications(exceptions.Throttled):
    """429: the client's address had too many refused authentications
    (:func:`maestrano_integration.auth.blocked_seconds`); ``Retry-After`` says when it
    may call again."""

    default_code = "too_many_refused_authentications"

    def __init__(self, wait: int) -> None:
        # DRF adds "Expected available in <wait> seconds."
        super().__init__(wait=wait, detail="Too many refused authentications from this address.")


class PlatformBasicAuthentication(BaseAuthentication):
    """The platform's ``api.id:api.key`` for the preset of the URL (``preset`` kwarg).

    Success gives ``request.auth`` = the :class:`Preset` (``request.user`` stays
    anonymous: a platform call acts as no local user). An address blocked for its refused
    authentications (:mod:`maestrano_integration.auth`) is answered 429 first, whatever
    it sends; a refusal counts against its address.
    """

    def authenticate(self, request: Any) -> tuple[AnonymousUser, Preset]:
        wait = blocked_seconds(request)
        if wait is not None:
            raise TooManyRefusedAuthentications(wait)
        preset_name = request.parser_context.get("kwargs", {}).get("preset")
        try:
            preset = get_preset(preset_name)
        except ImproperlyConfiguredPreset:
            raise exceptions.NotFound(f"Unknown preset {str(preset_name)!r}") from None
        credentials = parse_basic_authorization(request.META.get("HTTP_AUTHORIZATION"))
        if credentials is None or not credentials_match(
            preset=preset, username=credentials[0], password=credentials[1]
        ):
            auth_logger.warning(
                "Refused platform call with invalid credentials",
                extra={"preset": preset.name, "path": request.path},
            )
            record_refused(request)
            raise exceptions.AuthenticationFailed("Invalid credentials")
        return AnonymousUser(), preset

    def authenticate_header(self, request: Any) -> str:
        return REALM


class IsPlatform(BasePermission):
    """Only calls authenticated by :class:`PlatformBasicAuthentication`."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.auth, Preset)


class StrictJSONParser(BaseParser):
    """JSON within the view's body limit, parsed by :func:`strict_input.loads`.

    The raw bytes are kept in ``request.parser_context["body"]`` for a service that
    stores or re-reads them (the notifications webhook).
    """

    media_type = "application/json"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        context = parser_context if parser_context is not None else {}
        view = context.get("view")
        limit = view.max_body_bytes() if view is not None else default_max_body_bytes()
        request = context.get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise RequestTooLarge(f"The body is larger than {limit} bytes")
        # Read the stream ourselves: the limit is ours, not DATA_UPLOAD_MAX_MEMORY_SIZE's.
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise RequestTooLarge(f"The body is larger than {limit} bytes")
        context["body"] = body
        try:
            return self.load(body)
        except strict_input.InputRefused as error:
            raise exceptions.ParseError(f"The body is refused: {error}") from None

    def load(self, body: bytes) -> Any:
        """The request's value: :func:`strict_input.loads` (a parser for a view whose
        service parses the body itself overrides this)."""
        return strict_input.loads(body)


def default_max_body_bytes() -> int:
    # Django's limit, or Django's default when the project turned the limit off (None).
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or global_settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


class PlatformJSONRenderer(JSONRenderer):
    """Compact UTF-8 standard JSON, whatever ``REST_FRAMEWORK`` says."""

    ensure_ascii = False
    compact = True
    strict = True


class FirstRendererNegotiation(DefaultContentNegotiation):
    """JSON whatever ``Accept`` says, as the endpoints always answered (never a 406)."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


def _message(detail: Any) -> str:
    """One sentence from a DRF error detail (a string, a list or a dict of them)."""
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_message(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_message(item) for item in detail)
    return str(detail)


def error_response(*, status_code: int, message: str, headers: dict[str, str] | None = None):
    return Response({"error": message}, status=status_code, headers=headers)


def platform_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every refusal and failure of a platform view as ``{"error": "<message>"}``.

    DRF's own handler gives the status and headers (``WWW-Authenticate``,
    ``Retry-After``, ``Allow`` is added by the view) and rolls the transaction back;
    an unexpected exception is logged, signalled as Django does, and answered 500; a
    ``MAESTRANO`` value of a wrong type (``maestrano.E039``) is logged and answered 503.
    """
    request = context.get("request")
    if isinstance(exc, InvalidSettingType):
        # maestrano.E039: what is wrong goes to the log (once), not to the caller.
        log_once(
            exc,
            logger=logger,
            message="A platform view cannot run: %s",
            path=getattr(request, "path", ""),
        )
        return error_response(status_code=503, message="The application is misconfigured")
    if isinstance(exc, Http404) and str(exc):
        exc = exceptions.NotFound(str(exc))
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
        response.data = {"error": _message(detail)}
        return response
    logger.exception(
        "Unexpected error in a platform view", extra={"path": getattr(request, "path", "")}
    )
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    return error_response(status_code=500, message="Internal server error")


class PlatformThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, one bucket per preset and scope, counted per fixed window.

    The rate of a scope is ``MAESTRANO["THROTTLE_RATES"][scope]`` when the project
    sets it, else ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]``, else our
    default (:data:`maestrano_integration.conf.DEFAULTS`); ``None`` turns it off.

    The count is django-ratelimit's (:func:`django_ratelimit.core.get_usage`): one counter
    per bucket and window of the rate's period, ``cache.add`` then ``cache.incr`` in the
    ``default`` cache (``RATELIMIT_USE_CACHE`` names another), where DRF's
    ``SimpleRateThrottle`` read, trimmed and wrote back the whole list of the window's
    timestamps on every call (up to the rate's number of floats, pickled each time). The
    price, decided in docs/deploy.md ("Webhook throttling"): a fixed window instead of a
    sliding one, so up to twice the rate can pass around a window's edge (the windows of
    each bucket start at their own offset). A refused call is a 429 whose ``Retry-After``
    is the time until its bucket's next window.
    """

    #: The counters' group in django-ratelimit's cache keys.
    group = "maestrano_integration.platform_api.PlatformThrottle"

    def allow_request(self, request: Any, view: Any) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        bucket = self.get_cache_key(request, view)
        if bucket is None:
            return True
        usage = get_usage(
            request,
            group=self.group,
            key=lambda group, request: bucket,
            rate=(self.num_requests, self.duration),
            increment=True,
        )
        if usage is None:  # RATELIMIT_ENABLE = False
            return True
        self.seconds_left = usage["time_left"]
        return not usage["should_limit"]

    def wait(self) -> float:
        """Seconds until the bucket's next window (``Retry-After``): django-ratelimit's
        ``time_left`` counts whole seconds to the window's last one, which still counts."""
        return max(self.seconds_left + 1, 1)

    def get_rate(self) -> str | None:
        ours = maestrano_settings.user_settings.get("THROTTLE_RATES") or {}
        if self.scope in ours:
            return ours[self.scope]
        drf_rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope in drf_rates:
            # DRF's rates are "N/period" texts (drf-stubs types them as numbers).
            return drf_rates[self.scope]  # type: ignore[return-value]
        return maestrano_settings.THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        preset = request.auth
        if not isinstance(preset, Preset):
            return None
        return self.cache_format % {"scope": self.scope, "ident": preset.name}


class PlatformAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the view's ``operation_id`` (or ``operation_ids``
    by method) and, for a view that
    sets ``request_body_required``, a required request body (even a raw schema's)."""

    def get_operation_id(self) -> str:
        by_method = getattr(self.view, "operation_ids", None) or {}
        return (
            by_method.get(self.method)
            or getattr(self.view, "operation_id", None)
            or super().get_operation_id()
        )

    def _get_request_for_media_type(self, serializer: Any, direction: Any = "request") -> Any:
        schema, required = super()._get_request_for_media_type(serializer, direction)
        return schema, required or bool(getattr(self.view, "request_body_required", False))


class BasicAuthenticationScheme(OpenApiAuthenticationExtension):
    """An authentication class in the schema as HTTP basic (``appCredentials``); subclass
    with ``target_class`` and ``description``."""

    target_class = "maestrano_integration.platform_api.PlatformBasicAuthentication"
    name = "appCredentials"
    description = "The preset's app credentials: `api.id` as user, `api.key` as password."

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic", "description": self.description}


class SchemaView(SpectacularAPIView):
    """An OpenAPI schema built by ``build()`` (``as_view(build=..., custom_settings=...)``):
    YAML, or JSON for ``Accept: application/vnd.oai.openapi+json``; public."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [OpenApiYamlRenderer, OpenApiJsonRenderer]
    build: Any = None
    schema = None  # not part of any schema (a project's own included)

    def _get_schema_response(self, request: Any) -> Response:
        return Response(self.build())


class SchemaUIView(SpectacularSwaggerView):
    """drf-spectacular's Swagger UI page of a schema (``as_view(url_name=...)``): public,
    and GET (HEAD) only. drf-spectacular's answers OPTIONS by rendering its page's template
    with DRF's metadata in place of the page's context, which fails (a 500); here OPTIONS
    is a 405 as any other method."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    http_method_names = ["get", "head"]


class PlatformAPIView(APIView):
    """Base of every view the platform calls: our authentication, parser, renderer,
    error body and throttle, set here so the project's ``REST_FRAMEWORK`` changes none.

    Subclasses set ``http_method_names`` (anything else is a JSON 405) and, for a
    throttled webhook, ``throttle_scope``; ``self.preset`` is the authenticated preset.
    """

    authentication_classes = [PlatformBasicAuthentication]
    permission_classes = [IsPlatform]
    parser_classes = [StrictJSONParser]
    renderer_classes = [PlatformJSONRenderer]
    content_negotiation_class = FirstRendererNegotiation
    throttle_classes = [PlatformThrottle]
    throttle_scope: str | None = None
    versioning_class = None
    metadata_class = None
    schema = PlatformAutoSchema()
    #: The operation's id in the OpenAPI schema.
    operation_id: str | None = None
    #: Whether the schema says the request has a body.
    request_body_required = False

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        """The view, marked ``maestrano_session_exempt``: the platform calls it with basic
        auth, never with a user's session, so the SSO session checks
        (:class:`maestrano_accounts.middleware.MaestranoSessionMiddleware`) and the company's
        formats
        (the example project's ``crm.formatting``) have nothing to do for it, and a
        browser's session cookie sent along must not turn its answer into a redirect."""
        view = super().as_view(**initkwargs)
        view.maestrano_session_exempt = True  # type: ignore[attr-defined]  # a view's mark
        return view

    @property
    def preset(self) -> Preset:
        # PlatformBasicAuthentication, the only authentication class, sets the Preset.
        return cast(Preset, self.request.auth)

    def max_body_bytes(self) -> int:
        return default_max_body_bytes()

    def get_exception_handler(self) -> Any:
        return platform_exception_handler

    def get_authenticate_header(self, request: Any) -> str:
        return REALM

    def raw_json_body(self) -> bytes:
        """The body :class:`StrictJSONParser` accepted (``b""`` when there was none)."""
        self.request.data  # noqa: B018  (parses the body: 413, 415 or 400 from here)
        body = self.request.parser_context.get("body")
        if body is None:
            if self.request.META.get("CONTENT_LENGTH") not in (None, "", "0"):
                raise exceptions.UnsupportedMediaType(self.request.content_type or "none")
            return b""
        return body


# --- OpenAPI (drf-spectacular): the shapes every platform view shares --------------


class ErrorSerializer(serializers.Serializer):
    """``{"error": "<message>"}``: the body of every refusal (component ``Error``)."""

    error = serializers.CharField()


#: Why each refusal happens, for the schema (docs/protocol.md).
_REFUSALS = {
    400: "The body is not standard JSON, or not of the documented shape.",
    401: 'Missing or wrong app credentials: `{"error": "Invalid credentials"}`.',
    404: "Unknown preset (or, where documented, unknown group).",
    405: "Method not allowed.",
    413: "The body is larger than the limit.",
    415: "The body is not `application/json`.",
    422: "The body is valid JSON but cannot be accepted as a whole.",
    429: (
        "Too many calls for this preset, or too many refused authentications from this "
        "address; `Retry-After` says when to call again."
    ),
}


def error_responses(*codes: int) -> dict[int, Any]:
    """``{status: OpenApiResponse}`` of the ``{"error": ...}`` body, for ``extend_schema``."""
    from drf_spectacular.utils import OpenApiExample, OpenApiResponse

    return {
        code: OpenApiResponse(
            response=ErrorSerializer,
            description=_REFUSALS[code],
            examples=(
                [OpenApiExample("Invalid credentials", value={"error": "Invalid credentials"})]
                if code == 401
                else []
            ),
        )
        for code in codes
    }
