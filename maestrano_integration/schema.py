"""The OpenAPI 3 schema of the endpoints the platform calls (drf-spectacular).

Built from the DRF views the apps registered (:mod:`maestrano_integration.routes`)
at the paths of the default preset (every other preset serves the same operations
under ``/maestrano/<preset>/...``). Served at ``/maestrano/schema/`` and kept in
``docs/openapi/app.yaml`` (``make openapi``; ``tests/maestrano_integration/test_openapi.py``
fails when the two differ).
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer
from drf_spectacular.settings import patched_settings

from . import views
from .conf import get_preset
from .routes import schema_urlpatterns

#: drf-spectacular settings of this schema (the project's SPECTACULAR_SETTINGS are not used).
SETTINGS: dict[str, Any] = {
    "TITLE": "Maestrano integration: endpoints the platform calls",
    "DESCRIPTION": (
        "The metadata endpoint, the account webhooks and the Connec! notifications "
        "webhook of an application (docs/protocol.md). Every call carries the preset's "
        "app credentials as HTTP basic auth (`api.id:api.key`); every refusal answers "
        '`{"error": "<message>"}`. Paths are those of the default preset; another '
        "preset serves the same operations under `/maestrano/<preset>/...`, and a preset "
        "may announce other paths in its metadata."
    ),
    "VERSION": "1",
    "COMPONENT_SPLIT_REQUEST": False,
    "SORT_OPERATIONS": False,
}


def app_urlpatterns() -> list[URLPattern]:
    """The platform-facing DRF views at the default preset's paths."""
    return [
        path("maestrano/metadata", views.metadata),
        *schema_urlpatterns(get_preset(None)),
    ]


def app_schema() -> dict[str, Any]:
    """The schema as a dict (what ``/maestrano/schema/`` serves)."""
    with patched_settings(SETTINGS):
        generator = SchemaGenerator(patterns=app_urlpatterns())
        return generator.get_schema(request=None, public=True)


def render_yaml(schema: dict[str, Any]) -> str:
    with patched_settings(SETTINGS):
        return OpenApiYamlRenderer().render(schema, renderer_context={}).decode()
