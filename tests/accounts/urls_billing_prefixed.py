"""The same project with our billing pages under a prefix of their own."""

from django.urls import include, path

from .urls_billing_shadowed import own_billing

urlpatterns = [
    path("billing/", include(own_billing)),
    path("maestrano/billing/", include("maestrano_accounts.billing.urls")),
    path("", include("maestrano_integration.urls")),
]
