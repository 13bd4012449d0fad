"""Everything the platform calls, and the SSO pages, for every preset: include at the root.

``path("", include("maestrano_integration.urls"))`` serves the metadata endpoint
and every path the presets announce (SSO init and consume, account webhooks,
Connec! notifications), plus the SSO completion, logout and company switcher
(see :mod:`maestrano_integration.routes`), and the operations endpoints
(``/metrics``, ``/health/live``, ``/health/ready``; paths from
``MAESTRANO["METRICS"]`` and ``MAESTRANO["HEALTH"]``, read when this URLconf loads).
"""

from django.urls import include, path

from . import views
from .conf import maestrano_settings
from .routes import instrumented, registered_urlpatterns

_metadata = instrumented(views.metadata, endpoint="maestrano_integration:metadata")

metadata_patterns = [
    path("maestrano/metadata", _metadata, name="metadata"),
    path("maestrano/metadata.json", _metadata, name="metadata-json"),
    path("maestrano/metadata/<slug:preset>", _metadata, name="metadata-preset"),
    path("maestrano/<slug:preset>/metadata", _metadata, name="metadata-preset-prefixed"),
]


def _route(configured: str) -> str:
    return str(configured).strip("/")


operations_patterns = [
    path(_route(maestrano_settings.HEALTH["LIVE_PATH"]), views.health_live, name="health-live"),
    path(_route(maestrano_settings.HEALTH["READY_PATH"]), views.health_ready, name="health-ready"),
]
if maestrano_settings.METRICS["ENABLED"]:
    operations_patterns.append(
        path(_route(maestrano_settings.METRICS["PATH"]), views.metrics_view, name="metrics")
    )

urlpatterns = [
    path("", include((metadata_patterns, "maestrano_integration"))),
    path("", include((operations_patterns, "maestrano_operations"))),
    *registered_urlpatterns(),
]
