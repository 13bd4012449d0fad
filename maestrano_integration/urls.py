"""Everything the platform calls, and the SSO pages, for every preset: include at the root.

``path("", include("maestrano_integration.urls"))`` serves the metadata endpoint
and every path the presets announce (SSO init and consume, account webhooks,
Connec! notifications), plus the SSO completion, logout and company switcher
(see :mod:`maestrano_integration.routes`), and the operations endpoints
(``/metrics``, ``/health/live``, ``/health/ready``; paths from
``MAESTRANO["METRICS"]`` and ``MAESTRANO["HEALTH"]``, read when this URLconf loads),
and the OpenAPI schema of the platform-facing endpoints (``/maestrano/schema/``; with
``DEBUG`` and ``drf_spectacular`` installed, a Swagger UI at ``/maestrano/schema/ui/``).
"""

import logging

from django.apps import apps
from django.conf import settings
from django.urls import include, path

from . import views
from .conf import maestrano_settings
from .platform_api import SchemaUIView, SchemaView
from .routes import instrumented, registered_urlpatterns
from .schema import SETTINGS as SCHEMA_SETTINGS
from .schema import app_schema
from .setting_types import InvalidSettingType

logger = logging.getLogger(__name__)

_metadata = instrumented(views.metadata, endpoint="maestrano_integration:metadata")

metadata_patterns = [
    path("maestrano/metadata", _metadata, name="metadata"),
    path("maestrano/metadata.json", _metadata, name="metadata-json"),
    path("maestrano/metadata/<slug:preset>", _metadata, name="metadata-preset"),
    path("maestrano/<slug:preset>/metadata", _metadata, name="metadata-preset-prefixed"),
    # The OpenAPI schema of the endpoints above and of the webhooks (docs/openapi/app.yaml).
    path(
        "maestrano/schema/",
        SchemaView.as_view(build=app_schema, custom_settings=SCHEMA_SETTINGS),
        name="schema",
    ),
]
if settings.DEBUG and apps.is_installed("drf_spectacular"):
    # A browsable view of the schema, in development only (it loads Swagger UI from a CDN).
    metadata_patterns.append(
        path(
            "maestrano/schema/ui/",
            SchemaUIView.as_view(url_name="maestrano_integration:schema"),
            name="schema-ui",
        )
    )


def _route(configured: str) -> str:
    return str(configured).strip("/")


operations_patterns = [
    path(_route(maestrano_settings.HEALTH["LIVE_PATH"]), views.health_live, name="health-live"),
    path(_route(maestrano_settings.HEALTH["READY_PATH"]), views.health_ready, name="health-ready"),
]


def _metrics_enabled() -> bool:
    """``METRICS["ENABLED"]``; one of a wrong type (``"false"``) serves no metrics, and the
    system check ``maestrano.E039`` says why."""
    try:
        return bool(maestrano_settings.section("METRICS")["ENABLED"])
    except InvalidSettingType as error:
        logger.error("The metrics endpoint is not served: %s", error)
        return False


if _metrics_enabled():
    operations_patterns.append(
        path(_route(maestrano_settings.METRICS["PATH"]), views.metrics_view, name="metrics")
    )

urlpatterns = [
    path("", include((metadata_patterns, "maestrano_integration"))),
    path("", include((operations_patterns, "maestrano_operations"))),
    *registered_urlpatterns(),
]
