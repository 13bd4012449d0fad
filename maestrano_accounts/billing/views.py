"""Billing pages: the company's plan and charges, the plan page, and a "buy 100 SMS" action.

What an adopter writes for an in-app purchase (docs/protocol.md, 'Bills'): a form that
carries an idempotency key, so a double submit (or a reload of the POST)
charges once. Choosing or changing the plan is for the company's Admins, after a
confirmation page that says what changes on the platform.
"""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from maestrano_accounts.permissions import Role, company_role_required
from maestrano_accounts.selectors import current_company
from maestrano_integration.account import AccountApiError

from . import actions, services
from .models import AdHocCharge, CompanySubscription, Plan

logger = logging.getLogger(__name__)

#: The demo's in-app purchase.
SMS_PACK = {"amount_cents": 500, "units": "100", "description": "100 SMS"}
_KEY_FIELD = "idempotency_key"


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on (a local ``next``), else the billing page."""
    target = request.POST.get("next", "")
    # A path of this site only: redirect() would take any other word for a URL name.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect("maestrano_billing:overview")


def _no_company() -> HttpResponse:
    return HttpResponseForbidden("No active company: log in from the marketplace first.")


@login_required
@require_GET
def billing_overview(request: HttpRequest) -> HttpResponse:
    """The current company's plan, subscription status and ad-hoc charges."""
    company = current_company(request)
    if company is None:
        return _no_company()
    subscriptions = CompanySubscription.objects.filter(company=company).select_related("plan")
    subscription = (
        subscriptions.exclude(status=CompanySubscription.Status.CANCELLED).first()
        or subscriptions.first()
    )
    charges = AdHocCharge.objects.filter(company=company)[:50]
    context = {
        "company": company,
        "subscription": subscription,
        "plan_count": len(services.offered_plans()),
        "charges": charges,
        "sms_pack": SMS_PACK,
        # A fresh key per rendering of the form: resubmitting the same form
        # (double click, back + resubmit) reuses it and charges once.
        "idempotency_key": uuid.uuid4().hex,
    }
    return render(request, "maestrano_accounts/billing/overview.html", context)


@login_required
@require_POST
@company_role_required(Role.ADMIN)
def buy_sms(request: HttpRequest) -> HttpResponse:
    """Charge the current company for 100 SMS, once per form (hidden idempotency key).

    A purchase is a real bill on the platform: Admins (and Super Admins) only.
    """
    company = current_company(request)
    if company is None:
        return _no_company()
    key = request.POST.get(_KEY_FIELD, "")
    try:
        charge = actions.charge_company(
            company=company,
            amount_cents=SMS_PACK["amount_cents"],
            units=SMS_PACK["units"],
            description=SMS_PACK["description"],
            idempotency_key=f"sms:{key}" if key else "",
        )
    except services.InvalidBill as error:
        messages.error(request, f"Purchase refused: {error}")
        return _back(request)
    except AccountApiError as error:
        messages.error(
            request, "The marketplace refused the purchase: " + "; ".join(error.messages)
        )
        return _back(request)
    if charge.is_on_platform:
        messages.success(request, "Bought 100 SMS: billed through the marketplace.")
    elif charge.awaiting_answer:
        messages.warning(
            request, "Bought 100 SMS: the bill was sent; the marketplace has not answered yet."
        )
    else:
        messages.warning(
            request, "Bought 100 SMS: the bill will be sent when the marketplace is reachable."
        )
    return _back(request)


@login_required
@require_GET
def plans(request: HttpRequest) -> HttpResponse:
    """The offered plans, the company's current one marked; Admins get a "choose" button."""
    company = current_company(request)
    if company is None:
        return _no_company()
    context = {
        "company": company,
        "plans": services.offered_plans(),
        "current": services.open_subscription(company=company),
    }
    return render(request, "maestrano_accounts/billing/plans.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@company_role_required(Role.ADMIN)
def choose_plan(request: HttpRequest, plan_id: int) -> HttpResponse:
    """GET: what choosing ``plan`` changes (a confirmation); POST: choose it. Admins only."""
    company = current_company(request)
    if company is None:
        return _no_company()
    if not services.billing_enabled():
        raise Http404("Billing is off.")
    plan = get_object_or_404(Plan, pk=plan_id, offered=True)
    current = services.open_subscription(company=company)
    if current is not None and current.plan_id == plan.pk:
        messages.info(request, f"{company.name} is already on the {plan.name} plan.")
        return redirect("maestrano_billing:plans")
    if request.method == "POST":
        subscription = actions.change_plan(company=company, plan=plan)
        if subscription.is_on_platform:
            messages.success(request, f"{company.name} is now on the {plan.name} plan.")
        elif subscription.awaiting_answer:
            messages.warning(
                request,
                f"{company.name} is now on the {plan.name} plan: the marketplace was told "
                "and has not answered yet.",
            )
        else:
            messages.warning(
                request,
                f"{company.name} is now on the {plan.name} plan: the marketplace is told "
                "as soon as it is reachable.",
            )
        return redirect("maestrano_billing:overview")
    units = services.billed_units(company=company, plan=plan)
    context = {
        "company": company,
        "plan": plan,
        "current": current,
        "units": units,
        "price_cents": plan.price_cents * units,
        "first_charge": services.change_start_date(company=company, plan=plan),
    }
    return render(request, "maestrano_accounts/billing/plan_confirm.html", context)
