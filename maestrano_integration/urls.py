"""URLs of the protocol core. Include at the site root: ``path("", include(...))``."""

from django.urls import path

from . import views

app_name = "maestrano_integration"

urlpatterns = [
    path("maestrano/metadata", views.metadata, name="metadata"),
    path("maestrano/metadata.json", views.metadata, name="metadata-json"),
    path("maestrano/metadata/<slug:preset>", views.metadata, name="metadata-preset"),
    path("maestrano/<slug:preset>/metadata", views.metadata, name="metadata-preset-prefixed"),
]
