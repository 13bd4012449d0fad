"""The demo's billing pages (``/billing/``). Included at the site root by config.urls."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("billing/", views.billing_overview, name="overview"),
    path("billing/buy-sms/", views.buy_sms, name="buy-sms"),
]
