"""A project URLconf that mounts the platform's include under a prefix of its own."""

from django.urls import include, path

urlpatterns = [path("platform/", include("maestrano_integration.urls"))]
