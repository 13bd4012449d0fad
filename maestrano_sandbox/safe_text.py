"""The sandbox's pages and IdP refuse text no database can look up: one guard for all of them.

Ids in the URL, query parameters and form fields reach queries as they are; a
NUL character (``%00``) or a lone surrogate in one makes PostgreSQL refuse the
query (a 500); a form whose bytes are not UTF-8 would be stored with U+FFFD in their
place (``maestrano_integration.request_text.form_problem``). :func:`path` is
``django.urls.path`` with every view behind :func:`refuse_unsafe_text`, which
answers such a request with a 400 saying which value is wrong. The Connec! and
Account APIs check their own input and answer in their own error formats
(``maestrano_sandbox.connec.api``, ``maestrano_sandbox.views.account_api``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.request import QueryDict
from django.urls import path as django_path

from maestrano_integration import strict_input
from maestrano_integration.request_text import form_problem

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _pairs(query: QueryDict) -> Iterator[tuple[str, str]]:
    for name, values in query.lists():
        for value in values:
            yield name, value


def refuse_unsafe_text(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view: URL kwargs, query parameters and form fields must be safe text,
    and a form's bytes text (UTF-8)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            strict_input.check_texts(
                ((name, value) for name, value in kwargs.items() if isinstance(value, str)),
                what="URL part",
            )
            strict_input.check_texts(_pairs(request.GET), what="query parameter")
            if request.method == "POST" and request.content_type in FORM_CONTENT_TYPES:
                if problem := form_problem(request):
                    raise strict_input.InputRefused(problem)
                strict_input.check_texts(_pairs(request.POST), what="form field")
        except strict_input.InputRefused as error:
            message = f"The request is refused: {error}."
            if "json" in request.headers.get("Accept", ""):
                return JsonResponse({"error": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapper


def path(route: str, view: Callable[..., HttpResponse], **kwargs: Any) -> Any:
    """``django.urls.path`` for a view behind :func:`refuse_unsafe_text`."""
    return django_path(route, refuse_unsafe_text(view), **kwargs)
