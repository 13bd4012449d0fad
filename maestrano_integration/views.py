"""Views of the protocol core (the metadata endpoint) and of operations (metrics, health)."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .auth import parse_basic_authorization, platform_view
from .conf import Preset, maestrano_settings


@require_GET
@platform_view
def metadata(request: HttpRequest, *, preset: Preset) -> JsonResponse:
    """The preset's configuration (docs/protocol.md,
    'Metadata endpoint'), for the platform to load."""
    response = JsonResponse(preset.to_metadata())
    response["Cache-Control"] = "no-store"
    return response


# --- operations: metrics and health (docs/operations.md) ------------------------


def _metrics_access_allowed(request: HttpRequest) -> bool:
    """Basic auth credentials, an allowed address, or loopback in development."""
    options = maestrano_settings.METRICS
    credentials = options.get("BASIC_AUTH")
    if credentials:
        given = parse_basic_authorization(request.META.get("HTTP_AUTHORIZATION"))
        if given is not None:
            user_ok = hmac.compare_digest(given[0].encode(), str(credentials[0]).encode())
            password_ok = hmac.compare_digest(given[1].encode(), str(credentials[1]).encode())
            if user_ok & password_ok:
                return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
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


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; 401 (basic auth configured) or 403 for other callers."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from .metrics import exposition

    if not _metrics_access_allowed(request):
        if maestrano_settings.METRICS.get("BASIC_AUTH"):
            response = HttpResponse("Authentication required\n", status=401)
            response["WWW-Authenticate"] = 'Basic realm="metrics"'
            return response
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def health_live(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is checked (restart only if this fails)."""
    return JsonResponse({"status": "ok"})


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
