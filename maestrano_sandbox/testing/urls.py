"""The URLconf of a project's test settings (``sandbox_settings``): the sandbox at /sandbox/,
and the project's own URLconf (``MAESTRANO_SANDBOX["APP_URLCONF"]``) at the root, its error handlers
included. The project's ``urls.py`` stays as it is in production."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.conf import urls as django_urls
from django.urls import include, path

app_urls = import_module(settings.MAESTRANO_SANDBOX["APP_URLCONF"])

urlpatterns = [
    path("sandbox/", include("maestrano_sandbox.urls")),
    path("", include(app_urls.urlpatterns)),
]

handler400 = getattr(app_urls, "handler400", django_urls.handler400)
handler403 = getattr(app_urls, "handler403", django_urls.handler403)
handler404 = getattr(app_urls, "handler404", django_urls.handler404)
handler500 = getattr(app_urls, "handler500", django_urls.handler500)
