"""The apps' own HTML pages, rendered whatever the project's template context processors.

Our templates name ``user`` and ``request``. A project whose ``TEMPLATES`` lists neither
``django.contrib.auth.context_processors.auth`` nor ``...request`` (an API-first project,
an old settings file) would otherwise get a 500 on the dashboard. When the processors are
there, they give the same values.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page(
    request: HttpRequest,
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int | None = None,
) -> HttpResponse:
    """``django.shortcuts.render`` with ``request`` and ``user`` always in the context."""
    base = {"request": request, "user": getattr(request, "user", None)}
    return render(request, template_name, {**base, **(context or {})}, status=status)
