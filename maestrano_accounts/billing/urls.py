"""The demo's billing pages (``/billing/``). Included at the site root by config.urls."""

from django.urls import path

from . import views

app_name = "maestrano_billing"

urlpatterns = [
    path("billing/", views.billing_overview, name="overview"),
    path("billing/buy-sms/", views.buy_sms, name="buy-sms"),
    path("billing/plans/", views.plans, name="plans"),
    path("billing/plans/<int:plan_id>/", views.choose_plan, name="choose-plan"),
]
