"""URL converters for ids the platform (or a client) puts in URLs.

``<platform_id:group_id>`` matches what ``<str:...>`` matches (one path
segment) except text that :mod:`maestrano_integration.strict_input` refuses:
a NUL character (a percent-encoded ``%00``) or a lone surrogate. Such a URL
is a 404 like any unknown id, instead of reaching a query that PostgreSQL
refuses with an error (a 500).
"""

from __future__ import annotations

from django.urls import register_converter
from django.urls.converters import StringConverter


class PlatformIdConverter(StringConverter):
    regex = r"[^/\x00\ud800-\udfff]+"


register_converter(PlatformIdConverter, "platform_id")
