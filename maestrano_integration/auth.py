"""HTTP basic authentication of platform calls: one place, constant time, per preset.

The platform authenticates to us (metadata, account webhooks, Connec!
notifications) with ``api.id:api.key`` of the preset the URL belongs to.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from .conf import ImproperlyConfiguredPreset, Preset, get_preset
from .strict_input import is_safe_text

logger = logging.getLogger(__name__)

# A real Authorization header for api.id:api.key is well under this; anything
# longer is refused before decoding.
MAX_AUTHORIZATION_HEADER_LENGTH = 4096


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """Return ``(username, password)`` from a ``Basic`` header, or ``None`` if malformed.

    Malformed: not ``Basic``, not base64, not UTF-8, no ``:``, or holding a NUL
    character (no api id or key has one, and the platform side looks ids up in
    its database, which refuses NUL in a query).
    """
    if not header or len(header) > MAX_AUTHORIZATION_HEADER_LENGTH:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, separator, password = decoded.partition(":")
    if not separator or not is_safe_text(decoded):
        return None
    return username, password


def credentials_match(*, preset: Preset, username: str, password: str) -> bool:
    """Constant-time check of ``username:password`` against the preset's api id and key."""
    if not preset.api_id or not preset.api_key:
        return False
    id_ok = hmac.compare_digest(username.encode(), preset.api_id.encode())
    key_ok = hmac.compare_digest(password.encode(), preset.api_key.encode())
    return id_ok & key_ok


def is_authenticated_platform_request(request: HttpRequest, *, preset: Preset) -> bool:
    credentials = parse_basic_authorization(request.META.get("HTTP_AUTHORIZATION"))
    if credentials is None:
        return False
    username, password = credentials
    return credentials_match(preset=preset, username=username, password=password)


def invalid_credentials_response() -> JsonResponse:
    response = JsonResponse({"error": "Invalid credentials"}, status=401)
    response["WWW-Authenticate"] = 'Basic realm="maestrano"'
    return response


def unknown_preset_response(name: str) -> JsonResponse:
    return JsonResponse({"error": f"Unknown preset {name!r}"}, status=404)


def platform_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view called by the platform.

    Resolves the ``preset`` URL kwarg (absent = default preset) into a
    :class:`Preset` (404 if unknown), checks basic auth against it (401 if
    wrong) and calls ``view(request, *args, preset=<Preset>, **kwargs)``.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        preset_name = kwargs.pop("preset", None)
        try:
            preset = get_preset(preset_name)
        except ImproperlyConfiguredPreset:
            return unknown_preset_response(str(preset_name))
        if not is_authenticated_platform_request(request, preset=preset):
            logger.warning(
                "Refused platform call with invalid credentials",
                extra={"preset": preset.name, "path": request.path},
            )
            return invalid_credentials_response()
        return view(request, *args, preset=preset, **kwargs)

    return wrapper
