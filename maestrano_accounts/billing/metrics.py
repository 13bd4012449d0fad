"""Billing's state for ``/metrics``: subscriptions and charges not yet on the platform."""

from __future__ import annotations

from django.db.models import Count

from maestrano_integration.metrics import Samples

from .models import AdHocCharge, CompanySubscription


def billing_state() -> Samples:
    rows: list[tuple[tuple[str, ...], float]] = []
    for kind, model in (("subscription", CompanySubscription), ("charge", AdHocCharge)):
        pending = (
            model.objects.filter(status=model.Status.PENDING)
            .values("company__preset")
            .annotate(count=Count("pk"))
            .order_by()
        )
        rows.extend(((row["company__preset"], kind), row["count"]) for row in pending)
    return {"maestrano_billing_pending": rows}
