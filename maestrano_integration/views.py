"""Views the platform calls on the protocol core: the metadata endpoint."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .auth import platform_view
from .conf import Preset


@require_GET
@platform_view
def metadata(request: HttpRequest, *, preset: Preset) -> JsonResponse:
    """The preset's configuration (docs/protocol.md,
    'Metadata endpoint'), for the platform to load."""
    response = JsonResponse(preset.to_metadata())
    response["Cache-Control"] = "no-store"
    return response
