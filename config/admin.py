"""The project's admin site: Django's, minus two 500s of its own on odd query strings.

- ``?_to_field=`` (empty) on a change or delete page: Django checks a *given* ``_to_field``
  against the fields it may name, but an empty one skips the check and reaches
  ``Options.get_field("")`` (``FieldDoesNotExist``). Refused with a 400, as Django refuses
  a field it may not name.
- a changelist search (``?q=``) longer than ``MAX_SEARCH_LENGTH`` characters: its ``LIKE``
  pattern exceeds SQLite's limit (50,000 bytes: "LIKE or GLOB pattern too complex"). No
  search of a name, email or uid is that long; refused with a 400 on every database.
- a query string holding a NUL or a lone surrogate (a changelist filter
  ``?entity=%00``): PostgreSQL cannot compare a text column with it (``DataError``).
  Refused with a 400 by the rule of :func:`maestrano_integration.strict_input.check_texts`.

Every view of every ``ModelAdmin`` (ours, django-axes', Django's own) goes through
:meth:`ProjectAdminSite.admin_view`, so the rule is kept in this one place.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import TypeVar, cast

from django.contrib import admin
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.admin.views.main import SEARCH_VAR
from django.http import HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase

from maestrano_integration import strict_input

#: The longest changelist search accepted, in characters.
MAX_SEARCH_LENGTH = 1000


def odd_admin_query(request: HttpRequest) -> str:
    """Why the admin refuses ``request``'s query string or form (``""``: it does not)."""
    for data in (request.GET, request.POST):
        if TO_FIELD_VAR in data and not data[TO_FIELD_VAR]:
            return f"An empty {TO_FIELD_VAR} names no field."
    if len(request.GET.get(SEARCH_VAR, "")) > MAX_SEARCH_LENGTH:
        return f"A search is at most {MAX_SEARCH_LENGTH} characters."
    parameters = ((name, value) for name, values in request.GET.lists() for value in values)
    try:
        strict_input.check_texts(parameters, what="query parameter")
    except strict_input.InputRefused as refused:
        return f"The {refused}."
    return ""


_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class ProjectAdminSite(admin.AdminSite):
    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        wrapped = super().admin_view(view, cacheable)

        def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            problem = odd_admin_query(request)
            if problem:
                return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
            return wrapped(request, *args, **kwargs)

        # Called as the view it wraps (Django's own admin_view returns its wrapper the same way).
        return cast(_View, update_wrapper(checked, wrapped))
