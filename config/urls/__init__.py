from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from crm.views import landing

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/", admin.site.urls),
    # Metadata, SSO and webhooks at the paths every preset announces, and the SSO pages.
    path("", include("maestrano_integration.urls")),
    path("", include("accounts.billing.urls")),
    path("", include("crm.urls")),
]

if settings.SANDBOX["ENABLED"]:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
