"""The project's own error pages where Django has no handler: 405 (method not allowed).

Django renders ``403.html``, ``404.html`` and ``500.html`` itself (with ``DEBUG``
off); a 405 from ``require_POST`` has an empty body. This middleware gives it a
page, keeping the status and the ``Allow`` header.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


class MethodNotAllowedPageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.content or response.streaming:
            return response
        allowed = response.get("Allow", "")
        response.content = render_to_string(
            "405.html", {"allowed": allowed}, request=request
        ).encode()
        response["Content-Type"] = "text/html; charset=utf-8"
        return response
