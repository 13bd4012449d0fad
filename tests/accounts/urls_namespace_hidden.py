"""A project URLconf whose app takes the ``maestrano_accounts`` namespace before ours."""

from django.urls import include, path

from .urls_namespace_clash import profile

urlpatterns = [
    path("users/", include((profile, "maestrano_accounts"))),
    path("", include("maestrano_integration.urls")),
]
