"""Everything the platform calls, and the SSO pages, for every preset: include at the root.

``path("", include("maestrano_integration.urls"))`` serves the metadata endpoint
and every path the presets announce (SSO init and consume, account webhooks,
Connec! notifications), plus the SSO completion, logout and company switcher
(see :mod:`maestrano_integration.routes`).
"""

from django.urls import include, path

from . import views
from .routes import registered_urlpatterns

metadata_patterns = [
    path("maestrano/metadata", views.metadata, name="metadata"),
    path("maestrano/metadata.json", views.metadata, name="metadata-json"),
    path("maestrano/metadata/<slug:preset>", views.metadata, name="metadata-preset"),
    path("maestrano/<slug:preset>/metadata", views.metadata, name="metadata-preset-prefixed"),
]

urlpatterns = [
    path("", include((metadata_patterns, "maestrano_integration"))),
    *registered_urlpatterns(),
]
