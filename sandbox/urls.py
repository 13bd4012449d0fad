"""The emulated platform's URLs, mounted at /sandbox/ (or at the root of a sandbox-only server).

Each area keeps its own URL module: ``urls_identity`` (IdP, sessions, Account API,
account webhooks, pages) and ``urls_connec`` (Connec! API, batch, notifications).
"""

from django.urls import include, path
from django.views.generic import TemplateView

app_name = "sandbox"

urlpatterns = [
    path("", TemplateView.as_view(template_name="sandbox/home.html"), name="home"),
    path("", include("sandbox.urls_identity")),
    path("connec/", include("sandbox.urls_connec")),
]
