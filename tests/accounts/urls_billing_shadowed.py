"""A project URLconf whose own ``billing`` app serves ``billing/`` before our billing pages."""

from django.http import HttpResponse
from django.urls import include, path

own_billing = ([path("", lambda request: HttpResponse("their billing"), name="home")], "billing")

urlpatterns = [
    path("billing/", include(own_billing)),
    path("billing/", include("maestrano_accounts.billing.urls")),
    path("", include("maestrano_integration.urls")),
]
