"""A project URLconf whose own app takes the ``accounts`` namespace before ours."""

from django.http import HttpResponse
from django.urls import include, path

own_accounts = ([path("profile/", lambda request: HttpResponse(), name="profile")], "accounts")

urlpatterns = [
    path("users/", include(own_accounts)),
    path("", include("maestrano_integration.urls")),
]
