"""HTTP basic authentication of platform calls: one place, constant time, per preset.

The platform authenticates to us (metadata, account webhooks, Connec!
notifications) with ``api.id:api.key`` of the preset the URL belongs to; the
views use it through
:class:`maestrano_integration.platform_api.PlatformBasicAuthentication`.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from .conf import Preset
from .strict_input import is_safe_text

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
