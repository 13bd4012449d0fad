from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    path("admin/", admin.site.urls),
    # Metadata, SSO and webhooks at the paths every preset announces, and the SSO pages.
    path("", include("maestrano_integration.urls")),
    path("", include("accounts.billing.urls")),
    path("", include("crm.urls")),
]

if settings.SANDBOX["ENABLED"]:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
