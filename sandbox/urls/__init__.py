"""The emulated platform's URLs, mounted at /sandbox/ (or alone by ``config.urls.sandbox``).

Each area keeps its own URL module: ``identity`` (IdP, sessions, Account API,
account webhooks, pages) and ``connec`` (Connec! API, batch, notifications).
"""

from django.urls import include, path

from ..connec import api as connec_api
from ..views import pages

app_name = "sandbox"

urlpatterns = [
    path("", pages.home, name="home"),
    path("", include("sandbox.urls.identity")),
    path("connec/", include("sandbox.urls.connec")),
    # The Connec! API also answers at the Account API's host, so that a preset which
    # sets only api.host (connec.host then follows it) reaches the sandbox's hub.
    path("api/v2/<str:group_id>/<str:entity>", connec_api.entity_view),
    path("api/v2/<str:group_id>/<str:entity>/<str:record_id>", connec_api.entity_view),
    path("batch", connec_api.batch_view),
]
