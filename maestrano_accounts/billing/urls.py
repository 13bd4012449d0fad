"""The billing pages of the company's Admins: the project includes them under a prefix
of its choice, ``path("billing/", include("maestrano_accounts.billing.urls"))`` in the
example project (docs/billing.md)."""

from django.urls import path

from . import views

app_name = "maestrano_billing"

urlpatterns = [
    path("", views.billing_overview, name="overview"),
    path("buy/<slug:product>/", views.buy, name="buy"),
    path("purchases/<int:charge_id>/", views.purchase, name="purchase"),
    path("purchases/<int:charge_id>/status.json", views.purchase_status, name="purchase-status"),
    path("plans/", views.plans, name="plans"),
    path("plans/<int:plan_id>/", views.choose_plan, name="choose-plan"),
]
