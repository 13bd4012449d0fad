"""The project's own error pages where Django has no handler: 405 (method not allowed).

Django renders ``403.html``, ``404.html`` and ``500.html`` itself (with ``DEBUG``
off); a 405 from ``require_POST`` has an empty body. This middleware gives it a
page, keeping the status and the ``Allow`` header: ``{"detail": ...}`` on a JSON
endpoint's path or for a client that prefers JSON
(:func:`maestrano_integration.views.error_response`), the ``405.html`` page otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers

from maestrano_integration.views import error_response


class MethodNotAllowedPageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.content or response.streaming:
            return response
        allowed = response.get("Allow", "")

        def page() -> HttpResponse:
            html = render_to_string("405.html", {"allowed": allowed}, request=request)
            return HttpResponse(html, status=405)

        answer = error_response(
            request, status=405, detail=f'Method "{request.method}" not allowed.', page=page
        )
        # The view's response keeps its headers (Allow, Cache-Control) and cookies.
        response.content = answer.content
        response["Content-Type"] = answer["Content-Type"]
        if answer.has_header("Vary"):
            vary = [header.strip() for header in answer["Vary"].split(",")]
            patch_vary_headers(response, [header for header in vary if header])
        return response
