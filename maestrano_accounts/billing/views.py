"""Billing pages: the company's plan and charges, the plan page, and the purchase of a product
(``MAESTRANO["BILLING"]["PRODUCTS"]``).

What an adopter writes for an in-app purchase (docs/protocol.md, 'Bills'): a form that
carries an idempotency key, so a double submit (or a reload of the POST)
charges once, and a request that never waits for the platform: the purchase is
recorded, sent in the background, and its page follows it (docs/billing.md).
Choosing or changing the plan is for the company's Admins, after a confirmation page
that says what changes on the platform.
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
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from maestrano_accounts.permissions import Role, company_role_required
from maestrano_accounts.selectors import current_company
from maestrano_integration.views import json_errors, refuse_unreadable_form

from ..pages import local_url, render_page
from . import actions, services
from .models import AdHocCharge, CompanySubscription, Plan

logger = logging.getLogger(__name__)


#: Shown when a buy form is sent again: its purchase, not a new one.
REPEATED_PURCHASE_MESSAGE = _(
    "This form had already been sent: here is the purchase it made (nothing was bought "
    "twice). To buy more, use the Buy button of a freshly loaded page."
)
_KEY_FIELD = "idempotency_key"


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on (a local ``next``), else the billing page."""
    target = local_url(request, request.POST.get("next", ""))
    return HttpResponseRedirect(target) if target else redirect("maestrano_billing:overview")


def _no_company() -> HttpResponse:
    return HttpResponseForbidden(gettext("No active company: log in from the marketplace first."))


@login_required
@require_GET
@never_cache  # its buy form's one-time key: Back must not bring an old one back (bfcache)
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
    billing_enabled = services.billing_enabled()
    context = {
        "company": company,
        "subscription": subscription,
        "plan_count": len(services.offered_plans()),
        "charges": charges,
        "billing_enabled": billing_enabled,  # off: no purchase offered
        "products": services.offered_products() if billing_enabled else [],
        # A fresh key per rendering of the form: resubmitting the same form
        # (double click, back + resubmit) reuses it and charges once.
        "idempotency_key": uuid.uuid4().hex,
    }
    return render_page(request, "maestrano_accounts/billing/overview.html", context)


@login_required
@require_POST
@company_role_required(Role.ADMIN)
@refuse_unreadable_form
def buy(request: HttpRequest, product: str) -> HttpResponse:
    """Record the current company's purchase of ``product`` (one of
    ``MAESTRANO["BILLING"]["PRODUCTS"]``; another is a 404), once per form (hidden
    idempotency key), and answer at once with its page: the bill is sent in the background.

    A purchase is a real bill on the platform: Admins (and Super Admins) only. A form
    that is not UTF-8 is refused (400) before its key is read: Django would hand it on
    with U+FFFD in place of the bytes, and it would be stored.
    """
    company = current_company(request)
    if company is None:
        return _no_company()
    if not services.billing_enabled():  # billing off bills nothing, as choose_plan
        raise Http404("Billing is off.")
    offered = services.offered_product(product)
    if offered is None:
        raise Http404("No such product.")
    sent_at = timezone.now()
    try:
        charge = actions.buy_product(
            company=company, product=offered, form_key=request.POST.get(_KEY_FIELD, "")
        )
    except services.InvalidBill as error:
        messages.error(
            request,
            gettext("Purchase refused: %(error)s") % {"error": error},
            fail_silently=True,
        )
        return _back(request)
    if charge.created_at < sent_at:  # recorded by an earlier sending of this form
        # The same form sent again (a double click, or a page brought back by Back): the
        # purchase it already made, never a second one; said, so that nobody waits for one.
        messages.info(request, REPEATED_PURCHASE_MESSAGE, fail_silently=True)
    target = reverse("maestrano_billing:purchase", kwargs={"charge_id": charge.pk})
    back = local_url(request, request.POST.get("next", ""))
    return HttpResponseRedirect(f"{target}?{urlencode({'next': back})}" if back else target)


def _purchase_of(request: HttpRequest, charge_id: int) -> AdHocCharge | None:
    """The charge ``charge_id`` of the current company (``None``: no current company)."""
    company = current_company(request)
    if company is None:
        return None
    return get_object_or_404(
        AdHocCharge.objects.select_related("company"), pk=charge_id, company=company
    )


@login_required
@require_GET
def purchase(request: HttpRequest, charge_id: int) -> HttpResponse:
    """A purchase (an ad-hoc charge of the current company) and where it stands: "Pending"
    until the platform has the bill, then "Billed", or a failure and what to do next. The
    page follows it by polling :func:`purchase_status`."""
    charge = _purchase_of(request, charge_id)
    if charge is None:
        return _no_company()
    context = {
        "company": charge.company,
        "charge": charge,
        "progress": services.charge_progress(charge=charge),
        "back": local_url(request, request.GET.get("next", "")),
    }
    return render_page(request, "maestrano_accounts/billing/purchase.html", context)


@json_errors
@require_GET
@never_cache
def purchase_status(request: HttpRequest, charge_id: int) -> HttpResponse:
    """JSON polled by the purchase page: ``state``, ``label``, ``detail``, ``bill_id``,
    ``final``."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in first."}, status=403)
    try:
        charge = _purchase_of(request, charge_id)
    except Http404:  # another company's, or no such purchase: the same answer, in JSON
        return JsonResponse({"error": "No such purchase"}, status=404)
    if charge is None:
        return JsonResponse({"error": "No current company"}, status=403)
    return JsonResponse(services.charge_progress(charge=charge).as_json())


@login_required
@require_GET
def plans(request: HttpRequest) -> HttpResponse:
    """The offered plans, the company's current one marked; Admins get a "choose" button."""
    company = current_company(request)
    if company is None:
        return _no_company()
    plans = services.offered_plans()
    for plan in plans:  # the days it gives: a longer trial stored before the limit is clamped
        # An attribute of the page's plans, read by the template.
        plan.trial_days = services.effective_trial_days(days=plan.free_trial_days)  # type: ignore[attr-defined]
    context = {
        "company": company,
        "plans": plans,
        "current": services.open_subscription(company=company),
    }
    return render_page(request, "maestrano_accounts/billing/plans.html", context)


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
        names = {"company": company.name, "plan": plan.name}
        messages.info(
            request,
            gettext("%(company)s is already on the %(plan)s plan.") % names,
            fail_silently=True,
        )
        return redirect("maestrano_billing:plans")
    if request.method == "POST":
        subscription = actions.change_plan(company=company, plan=plan)
        names = {"company": company.name, "plan": plan.name}
        if subscription.is_on_platform:
            messages.success(
                request,
                gettext("%(company)s is now on the %(plan)s plan.") % names,
                fail_silently=True,
            )
        elif subscription.awaiting_answer:
            messages.warning(
                request,
                gettext(
                    "%(company)s is now on the %(plan)s plan: the marketplace was told "
                    "and has not answered yet."
                )
                % names,
                fail_silently=True,
            )
        else:
            messages.warning(
                request,
                gettext(
                    "%(company)s is now on the %(plan)s plan: the marketplace is told "
                    "as soon as it is reachable."
                )
                % names,
                fail_silently=True,
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
    return render_page(request, "maestrano_accounts/billing/plan_confirm.html", context)
