"""Connec! notification webhook URLs per preset. Included at the site root."""

from django.urls import path

from . import views

app_name = "sync"

urlpatterns = [
    path(
        "maestrano/connec/notifications",
        views.connec_notifications,
        name="connec-notifications",
    ),
    path(
        "maestrano/<slug:preset>/connec/notifications",
        views.connec_notifications,
        name="connec-notifications-preset",
    ),
]
