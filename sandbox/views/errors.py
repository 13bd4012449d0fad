"""The sandbox's error pages, for the ``handler404`` of a URLconf that mounts the sandbox."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views import defaults


def _mount() -> str | None:
    """The path the sandbox is served under (``/sandbox/``), or ``None`` when not mounted."""
    try:
        return reverse("sandbox:home")
    except NoReverseMatch:
        return None


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 404 under the sandbox's mount is the sandbox's page (its base template, its
    navigation); elsewhere Django's own ``page_not_found``, the project's ``404.html``."""
    mount = _mount()
    if mount is None or not request.path.startswith(mount):
        return defaults.page_not_found(request, exception)
    return render(request, "sandbox/404.html", {"request_path": request.path}, status=404)
