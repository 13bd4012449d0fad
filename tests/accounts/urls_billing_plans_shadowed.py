"""A project pattern that takes the billing plans' path, not the overview's."""

from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("billing/<str:section>/", lambda request, section: HttpResponse(section)),
    path("billing/", include("maestrano_accounts.billing.urls")),
    path("", include("maestrano_integration.urls")),
]
