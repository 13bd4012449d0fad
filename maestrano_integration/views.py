"""Views of the protocol core (the metadata endpoint), of operations (metrics, health), and
the 400 handler of a project whose APIs answer JSON (:func:`bad_request`, and
:func:`json_errors`, which marks a plain Django view as one of those APIs); the 400 of a
form that is not text (:func:`refuse_unreadable_form`)."""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template import TemplateDoesNotExist, loader
from django.urls import ResolverMatch, get_script_prefix, resolve
from django.utils.cache import patch_vary_headers
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from .auth import (
    basic_credentials_match,
    blocked_seconds,
    configured_basic_auth,
    parse_basic_authorization,
    record_refused,
    request_address,
)
from .conf import Preset, maestrano_settings
from .platform_api import PlatformAPIView, error_responses
from .request_text import UnusableContentType, form_problem
from .routes import roots_outside_script_prefix
from .setting_types import InvalidSettingType, log_once

logger = logging.getLogger(__name__)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


_TEXT = {"type": "string"}
_FLAG = {"type": "boolean"}
#: The metadata document (docs/protocol.md, 'Metadata endpoint') as a JSON schema.
METADATA_SCHEMA = _object(
    {
        "environment": {"type": "string", "enum": ["test", "production"]},
        "app": _object({"host": _TEXT}),
        "api": _object(
            {
                "id": _TEXT,
                "version": _TEXT,
                "lang": _TEXT,
                "lang_version": _TEXT,
                "host": _TEXT,
                "base": _TEXT,
            }
        ),
        "sso": _object(
            {
                "enabled": _FLAG,
                "slo_enabled": _FLAG,
                "init_path": _TEXT,
                "consume_path": _TEXT,
                "creation_mode": {"type": "string", "enum": ["real", "virtual"]},
                "idm": _TEXT,
                "idp": _TEXT,
                "name_id_format": _TEXT,
                "x509_fingerprint": _TEXT,
                "x509_certificate": _TEXT,
            }
        ),
        "webhook": _object(
            {
                "account": _object({"groups_path": _TEXT, "group_users_path": _TEXT}),
                "connec": _object(
                    {
                        "notifications_path": _TEXT,
                        "subscriptions": {
                            "type": "object",
                            "additionalProperties": {"type": "boolean"},
                        },
                    }
                ),
            }
        ),
    }
)

METADATA_EXAMPLE = {
    "environment": "test",
    "app": {"host": "https://app.example"},
    "api": {
        "id": "app-1",
        "version": "0.1.0",
        "lang": "python",
        "lang_version": "3.12.3 django/5.2",
        "host": "https://platform.example",
        "base": "/api/v1/",
    },
    "sso": {
        "enabled": True,
        "slo_enabled": True,
        "init_path": "/maestrano/auth/saml/init",
        "consume_path": "/maestrano/auth/saml/consume",
        "creation_mode": "real",
        "idm": "https://app.example",
        "idp": "https://platform.example",
        "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "x509_fingerprint": "AA:BB:…",
        "x509_certificate": "-----BEGIN CERTIFICATE-----…",
    },
    "webhook": {
        "account": {
            "groups_path": "/maestrano/account/groups/:id",
            "group_users_path": "/maestrano/account/groups/:group_id/users/:id",
        },
        "connec": {
            "notifications_path": "/maestrano/connec/notifications",
            "subscriptions": {"people": True, "organizations": True},
        },
    },
}


@extend_schema(
    summary="The preset's configuration",
    responses={
        200: METADATA_SCHEMA,
        **error_responses(401, 404, 405, 429),
    },
    examples=[OpenApiExample("Default preset", value=METADATA_EXAMPLE, response_only=True)],
    tags=["metadata"],
)
class MetadataView(PlatformAPIView):
    """The preset's configuration (docs/protocol.md, 'Metadata endpoint'), for the
    platform to load. ``api.key`` is never part of it."""

    http_method_names = ["get", "head"]
    operation_id = "metadata"

    def get(self, request: Any, preset: str | None = None) -> Response:
        _log_roots_outside_script_prefix(self.preset)
        return Response(self.preset.to_metadata(), headers={"Cache-Control": "no-store"})


def _log_roots_outside_script_prefix(preset: Preset) -> None:
    """Served under a script prefix (the WSGI server's ``SCRIPT_NAME``) that ``preset``'s
    ``app.host`` lacks, the metadata announces URLs outside the project: said in the log,
    as check ``maestrano.E034`` says it for ``FORCE_SCRIPT_NAME`` (the answer is the
    platform's to read all the same)."""
    for outside in roots_outside_script_prefix(script_prefix=get_script_prefix(), presets=[preset]):
        logger.error(
            "%s Set %s to the URL of the project's root, its script prefix included: %s.",
            outside.describe(),
            outside.key,
            outside.expected,
        )


metadata = MetadataView.as_view()


# --- JSON endpoints: what a refused request to them answers ----------------------

_View = TypeVar("_View")
#: The attribute :func:`json_errors` sets; read by :func:`bad_request` through the
#: resolved view (the function, or for ``as_view()`` its ``view_class`` and
#: ``view_initkwargs``).
JSON_ERRORS_ATTRIBUTE = "answers_json_errors"


def json_errors(view: _View) -> _View:
    """Mark ``view`` as a JSON endpoint, so that a request Django refuses on its path
    (a ``Host`` not in ``ALLOWED_HOSTS``, too many fields, ...) answers JSON, not
    Django's HTML page (:func:`bad_request`).

    ``view`` is a view function (decorate it, in any order with Django's decorators:
    they copy the marker with ``functools.wraps``) or a class-based view (decorate the
    class: ``as_view()`` keeps it as ``view_class``, and subclasses inherit it).
    Django REST framework views that render JSON need no marker.
    """
    setattr(view, JSON_ERRORS_ATTRIBUTE, True)
    return view


# --- operations: metrics and health (docs/operations.md) ------------------------


def _metrics_access_allowed(request: HttpRequest) -> bool:
    """Basic auth credentials, an allowed address, or loopback in development."""
    options = maestrano_settings.section("METRICS")
    credentials = configured_basic_auth(options.get("BASIC_AUTH"))
    if credentials is not None:
        given = parse_basic_authorization(request.META.get("HTTP_AUTHORIZATION"))
        if given is not None and basic_credentials_match(given=given, expected=credentials):
            return True
    try:
        address = ipaddress.ip_address(request_address(request))
    except ValueError:
        return False
    if settings.DEBUG and options.get("ALLOW_LOOPBACK_IN_DEBUG") and address.is_loopback:
        return True
    for allowed in options.get("ALLOWED_ADDRESSES") or ():
        try:
            if address in ipaddress.ip_network(str(allowed), strict=False):
                return True
        except ValueError:
            continue
    return False


@json_errors
@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; 401 (basic auth configured) or 403 for other callers. With
    basic auth, refusals count against the client's address and a blocked address is
    answered 429 first (:mod:`maestrano_integration.auth`, the rule of every basic-auth
    endpoint)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from .metrics import exposition

    basic_auth = bool(maestrano_settings.METRICS.get("BASIC_AUTH"))
    wait = blocked_seconds(request) if basic_auth else None
    if wait is not None:
        response = HttpResponse(
            "Too many refused authentications from this address\n",
            status=429,
            content_type="text/plain",
        )
        response["Retry-After"] = str(wait)
        return response
    try:
        allowed = _metrics_access_allowed(request)
    except InvalidSettingType as error:  # maestrano.E039: refused, and logged why
        log_once(error, logger=logger, message="The metrics endpoint refuses every call: %s")
        return HttpResponse("Misconfigured\n", status=503, content_type="text/plain")
    if not allowed:
        if basic_auth:
            record_refused(request)
            response = HttpResponse("Authentication required\n", status=401)
            response["WWW-Authenticate"] = 'Basic realm="metrics"'
            return response
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


@json_errors
@require_GET
@never_cache
def health_live(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is checked (restart only if this fails)."""
    return JsonResponse({"status": "ok"})


@json_errors
@require_GET
@never_cache
def health_ready(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 with the failing checks and why."""
    from .health import readiness

    results = readiness()
    failed = [result for result in results if not result.ok]
    body = {
        "status": "fail" if failed else "ok",
        "checks": {result.name: "ok" if result.ok else result.reason for result in results},
    }
    if failed:
        body["reason"] = "; ".join(f"{result.name}: {result.reason}" for result in failed)
    return JsonResponse(body, status=503 if failed else 200)


# --- errors: a request refused before any view ----------------------------------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A ``handler400`` for a project's root URLconf: JSON for its APIs, Django's page elsewhere.

    Django answers a request it refuses (a ``Host`` header not in ``ALLOWED_HOSTS``, a
    body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, more fields than
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS``, a malformed multipart body: a
    ``SuspiciousOperation``, with ``DEBUG`` off) with its ``handler400``, an HTML page by
    default. This one answers ``{"detail": ...}`` instead, ``application/json`` as DRF's
    own errors, when

    - the path is served by a JSON endpoint: a Django REST framework view that renders
      JSON (the platform's endpoints, the sandbox's APIs, the OpenAPI schemas, a
      project's own DRF API) or a view marked with :func:`json_errors` (health,
      metrics, the example app's ``.json`` views). Which paths those are is the
      URLconf's answer, so custom preset paths need no list of prefixes;
    - or else the ``Accept`` header prefers ``application/json`` to ``text/html``
      (strictly: HTML wins a tie); that answer, JSON or HTML, carries ``Vary: Accept``.

    Any other request gets the project's ``400.html`` page with the same reason
    (:func:`bad_request_page`, rendered without the refused request, as Django does),
    or ``django.views.defaults.bad_request`` when the project has none. It never raises:
    a handler that did would turn the 400 into a 500.
    ``handler400 = "maestrano_integration.views.bad_request"`` (docs/install.md).
    """
    detail = _refusal(exception)
    return error_response(
        request,
        status=400,
        detail=detail,
        page=lambda: bad_request_page(
            reason=detail, request=None, fallback=lambda: defaults.bad_request(request, exception)
        ),
    )


#: The project's page for a 400, by the name Django's own ``handler400`` renders.
BAD_REQUEST_TEMPLATE = "400.html"


def bad_request_page(
    *, reason: str, request: HttpRequest | None, fallback: Callable[[], HttpResponse]
) -> HttpResponse:
    """The project's 400 page (:data:`BAD_REQUEST_TEMPLATE`) saying ``reason`` (a sentence
    in plain words, ``{{ reason }}`` in the template), in the site's layout: with
    ``request``'s context (the user, the current company) when given, else as Django
    renders its 400 page, without one (a request Django refused is not read further).
    ``fallback()`` answers when the project has no such template."""
    try:
        template = loader.get_template(BAD_REQUEST_TEMPLATE)
    except TemplateDoesNotExist:
        return fallback()
    return HttpResponseBadRequest(template.render({"reason": reason}, request))


def error_response(
    request: HttpRequest, *, status: int, detail: str, page: Callable[[], HttpResponse]
) -> HttpResponse:
    """An error answer in the client's format: ``{"detail": detail}`` with ``status`` for a
    JSON endpoint's path or a client whose ``Accept`` prefers JSON (the rules of
    :func:`bad_request`), else ``page()``, the HTML page; ``Vary: Accept`` whenever the
    header decided. For a project's own error pages (a 405, ...), so that its JSON
    endpoints answer JSON errors too."""
    match = _match(request)
    if _is_marked(match) or _renders_json(match):
        return JsonResponse({"detail": detail}, status=status)
    response = JsonResponse({"detail": detail}, status=status) if _prefers_json(request) else page()
    patch_vary_headers(response, ["Accept"])
    return response


def _match(request: HttpRequest) -> ResolverMatch | None:
    """The view the path is (or would have been) served by; ``None`` for no view.

    The request was refused, maybe before URL resolution: its path is whatever the
    client sent. Anything resolving it raises (no pattern, a project's converter that
    fails on odd input) means no view, never an error out of the handler.
    """
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match
    try:
        return resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
    except Http404:
        return None
    except Exception:
        logger.warning("bad_request: the refused request's path did not resolve", exc_info=True)
        return None


def _is_marked(match: ResolverMatch | None) -> bool:
    """Whether ``match``'s view is marked by :func:`json_errors`: on the function itself,
    or, for a class-based view, on ``view_class`` unless ``as_view()`` overrode it."""
    if match is None:
        return False
    func = match.func
    if getattr(func, JSON_ERRORS_ATTRIBUTE, False):
        return True
    view_class = getattr(func, "view_class", None)
    initkwargs = getattr(func, "view_initkwargs", None) or {}
    return bool(
        initkwargs.get(JSON_ERRORS_ATTRIBUTE, getattr(view_class, JSON_ERRORS_ATTRIBUTE, False))
    )


def _renders_json(match: ResolverMatch | None) -> bool:
    """Whether ``match``'s view is a DRF view with a JSON renderer (``as_view()`` keeps
    the class as ``cls`` and its arguments as ``initkwargs``)."""
    if match is None:
        return False
    view_class = getattr(match.func, "cls", None)
    if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
        return False
    initkwargs = getattr(match.func, "initkwargs", None) or {}
    renderers = initkwargs.get("renderer_classes", view_class.renderer_classes)
    return any("json" in renderer.media_type for renderer in renderers)


_HTML = "text/html"
_JSON = "application/json"


def _prefers_json(request: HttpRequest) -> bool:
    """Whether ``Accept`` ranks JSON strictly above HTML (``Accept: */*``, a browser's
    ``text/html,...,*/*;q=0.8``, or no header at all: HTML). Django ranks equal
    qualities by the header's order, so a tie is settled here, for HTML. An ``Accept``
    Django cannot parse counts as no preference."""
    try:
        if request.get_preferred_type([_HTML, _JSON]) != _JSON:
            return False
        json_type, html_type = request.accepted_type(_JSON), request.accepted_type(_HTML)
        return html_type is None or (
            json_type is not None and json_type.quality > html_type.quality
        )
    except Exception:
        logger.warning("bad_request: the Accept header did not parse", exc_info=True)
        return False


def _refusal(exception: Exception) -> str:
    """What was wrong, without echoing the request (Django's page says no more)."""
    if isinstance(exception, DisallowedHost):
        return "The Host header names no host this site serves."
    if isinstance(exception, UnusableContentType):
        return str(exception)  # the charset escaped and cut (request_text)
    return "Bad request."


# --- forms that are not text ----------------------------------------------------------


def unreadable_form_response(request: HttpRequest) -> HttpResponse | None:
    """The 400 answer to a POSTed form that is not text, or ``None`` for any other request.

    The rule is :func:`maestrano_integration.request_text.form_problem` (bytes that are
    not UTF-8, which Django would read as U+FFFD); the answer names the field, as
    ``{"detail": ...}`` where :func:`error_response` answers JSON, else as the project's
    400 page (:func:`bad_request_page`, in the request's context; a plain-text page when
    the project has none). Call it before a view reads a field of a form whose values it
    keeps.
    """
    problem = form_problem(request)
    if problem is None:
        return None
    message = f"The form is refused: {problem}."
    logger.warning("%s (%s %s)", message, request.method, request.path)
    return error_response(
        request,
        status=400,
        detail=message,
        page=lambda: bad_request_page(
            reason=message,
            request=request,
            fallback=lambda: HttpResponseBadRequest(
                message, content_type="text/plain; charset=utf-8"
            ),
        ),
    )


def refuse_unreadable_form(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view function: a POSTed form that is not text is answered 400
    (:func:`unreadable_form_response`) before the view runs. Put it below the decorators
    that check who may post (``login_required``...), so that those answer first."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = unreadable_form_response(request)
        return refusal if refusal is not None else view(request, *args, **kwargs)

    return wrapper
