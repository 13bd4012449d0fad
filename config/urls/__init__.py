from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from crm.views import landing

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/", admin.site.urls),
    # Metadata, SSO and webhooks at the paths every preset announces, and the SSO pages.
    path("", include("maestrano_integration.urls")),
    path("billing/", include("maestrano_accounts.billing.urls")),
    path("", include("crm.urls")),
]

# A request refused before any view (a Host not in ALLOWED_HOSTS, ...): JSON on the APIs'
# paths (the platform's endpoints, the sandbox's APIs), Django's 400 page elsewhere.
handler400 = "maestrano_integration.views.bad_request"

if settings.MAESTRANO_SANDBOX["ENABLED"]:
    urlpatterns.append(path("sandbox/", include("maestrano_sandbox.urls")))
    # A 404 under /sandbox/ is the sandbox's page; the app's pages keep templates/404.html.
    handler404 = "maestrano_sandbox.views.errors.page_not_found"
