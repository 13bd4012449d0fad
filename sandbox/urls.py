"""The emulated platform's URLs, mounted at /sandbox/ (or alone by ``config.urls_sandbox``).

Each area keeps its own URL module: ``urls_identity`` (IdP, sessions, Account API,
account webhooks, pages) and ``urls_connec`` (Connec! API, batch, notifications).
"""

from django.urls import include, path

from . import views_pages

app_name = "sandbox"

urlpatterns = [
    path("", views_pages.home, name="home"),
    path("", include("sandbox.urls_identity")),
    path("connec/", include("sandbox.urls_connec")),
]
