"""The sandbox's error answers: its HTML 404 page (the ``handler404`` of a URLconf that
mounts the sandbox), and the JSON 404 of a path under one of its APIs that names no endpoint."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from ..connec.errors import ConnecApiError


def _mount() -> str | None:
    """The path the sandbox is served under (``/sandbox/``), or ``None`` when not mounted."""
    try:
        return reverse("maestrano_sandbox:home")
    except NoReverseMatch:
        return None


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 404 under the sandbox's mount is the sandbox's page (its base template, its
    navigation); elsewhere Django's own ``page_not_found``, the project's ``404.html``."""
    mount = _mount()
    if mount is None or not request.path.startswith(mount):
        return defaults.page_not_found(request, exception)
    return render(request, "maestrano_sandbox/404.html", {"request_path": request.path}, status=404)


def _no_endpoint(request: HttpRequest) -> str:
    return f"No endpoint at {request.path}: check the path against docs/protocol.md."


# Routed views rather than a branch of ``handler404``: Django answers an unmatched path
# with its HTML debug page while ``DEBUG`` is on, whatever ``handler404`` says. Any
# method, no CSRF check: the APIs are called by apps with basic auth, never by forms.
@csrf_exempt
def account_api_not_found(request: HttpRequest) -> JsonResponse:
    """A path under the platform's ``api/v1/`` or ``api/config/`` that names no
    endpoint: a 404 in the Account API's envelope."""
    body = {"success": False, "errors": {"request": [_no_endpoint(request)]}, "data": None}
    return JsonResponse(body, status=404)


@csrf_exempt
def connec_api_not_found(request: HttpRequest) -> JsonResponse:
    """A path under the Connec! API that names no endpoint: a 404 in the Connec! error
    envelope (``{"errors": [{"id", "href", "status", "code", "title", "detail"}]}``)."""
    error = ConnecApiError.single(404, _no_endpoint(request))
    return JsonResponse(error.body(href=request.path), status=404)
