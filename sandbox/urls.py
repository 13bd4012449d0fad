"""The emulated platform's URLs, mounted at /sandbox/ (or alone by ``config.urls_sandbox``).

Each area keeps its own URL module: ``urls_identity`` (IdP, sessions, Account API,
account webhooks, pages) and ``urls_connec`` (Connec! API, batch, notifications).
"""

from django.urls import include, path

from . import views_pages
from .connec import api as connec_api

app_name = "sandbox"

urlpatterns = [
    path("", views_pages.home, name="home"),
    path("", include("sandbox.urls_identity")),
    path("connec/", include("sandbox.urls_connec")),
    # The Connec! API also answers at the Account API's host, so that a preset which
    # sets only api.host (connec.host then follows it) reaches the sandbox's hub.
    path("api/v2/<str:group_id>/<str:entity>", connec_api.entity_view),
    path("api/v2/<str:group_id>/<str:entity>/<str:record_id>", connec_api.entity_view),
    path("batch", connec_api.batch_view),
]
