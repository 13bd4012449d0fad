"""The sandbox's HTML pages: home, app, group and user pages, and their buttons.

Buttons are POST forms (CSRF protected) that call the services and redirect
back with a message, so a person can run the demo by clicking.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import account_webhooks, directory
from ..forms import MembershipForm, RegisteredAppForm
from ..models import (
    AccountWebhookDelivery,
    Group,
    GroupMembership,
    PlatformUser,
    RegisteredApp,
)
from ..registration import MetadataError, refresh_metadata

PAGE_LIMIT = 200


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "apps": RegisteredApp.objects.all(),
        "groups": Group.objects.prefetch_related("apps", "memberships").all()[:PAGE_LIMIT],
        "users": PlatformUser.objects.all()[:PAGE_LIMIT],
        "form": RegisteredAppForm(),
    }
    return render(request, "maestrano_sandbox/home.html", context)


@require_POST
def app_register(request: HttpRequest) -> HttpResponse:
    form = RegisteredAppForm(request.POST)
    if not form.is_valid():
        context = {
            "apps": RegisteredApp.objects.all(),
            "groups": Group.objects.all()[:PAGE_LIMIT],
            "users": PlatformUser.objects.all()[:PAGE_LIMIT],
            "form": form,
        }
        return render(request, "maestrano_sandbox/home.html", context, status=400)
    app = form.save()
    messages.success(request, f"Registered {app.api_id}.")
    if request.POST.get("fetch_metadata"):
        _refresh(request, app)
    return redirect("maestrano_sandbox:app", api_id=app.api_id)


def _refresh(request: HttpRequest, app: RegisteredApp) -> None:
    try:
        refresh_metadata(app)
    except MetadataError as error:
        messages.error(request, f"Metadata not loaded: {error}")
    else:
        messages.success(request, f"Loaded the metadata of {app.api_id}.")


def app_detail(request: HttpRequest, api_id: str) -> HttpResponse:
    app = get_object_or_404(RegisteredApp, api_id=api_id)
    form = RegisteredAppForm(instance=app)
    status = 200
    if request.method == "POST":
        form = RegisteredAppForm(request.POST, instance=app)
        if form.is_valid():
            app = form.save()
            messages.success(request, "Registration saved.")
            return redirect("maestrano_sandbox:app", api_id=app.api_id)
        status = 400
    memberships = (
        GroupMembership.objects.filter(group__apps=app)
        .select_related("group", "user")
        .order_by("group__uid", "user__uid")[:PAGE_LIMIT]
    )
    context = {
        "app": app,
        # A list, not the dict: in a template ``subscriptions.items`` is the "items" entity.
        "subscribed": subscribed_entities(app),
        "form": form,
        "memberships": memberships,
        "deliveries": app.account_webhook_deliveries.all()[:50],
    }
    return render(request, "maestrano_sandbox/app.html", context, status=status)


def subscribed_entities(app: RegisteredApp) -> list[str]:
    """The entities ``app`` subscribes to, sorted (whatever the stored value looks like)."""
    subscriptions = app.subscriptions if isinstance(app.subscriptions, dict) else {}
    return sorted(str(entity) for entity, on in subscriptions.items() if on)


@require_POST
def app_refresh_metadata(request: HttpRequest, api_id: str) -> HttpResponse:
    app = get_object_or_404(RegisteredApp, api_id=api_id)
    _refresh(request, app)
    return redirect("maestrano_sandbox:app", api_id=app.api_id)


def group_detail(
    request: HttpRequest,
    uid: str,
    *,
    member_form: MembershipForm | None = None,
    status: int = 200,
) -> HttpResponse:
    group = get_object_or_404(
        Group.objects.prefetch_related(
            Prefetch("memberships", queryset=GroupMembership.objects.select_related("user"))
        ),
        uid=uid,
    )
    context = {
        "group": group,
        "apps": group.apps.all(),
        "other_apps": RegisteredApp.objects.exclude(groups=group),
        "bills": group.bills.select_related("app").order_by("-created_at")[:PAGE_LIMIT],
        "recurring_bills": group.recurring_bills.select_related("app").order_by("-created_at"),
        "deliveries": AccountWebhookDelivery.objects.filter(group_uid=group.uid)
        .select_related("app")
        .order_by("-created_at")[:50],
        "member_form": member_form or MembershipForm(),
    }
    return render(request, "maestrano_sandbox/group.html", context, status=status)


@require_POST
def group_add_member(request: HttpRequest, uid: str) -> HttpResponse:
    group = get_object_or_404(Group, uid=uid)
    form = MembershipForm(request.POST)
    if not form.is_valid():
        # The page again, with the errors beside their fields and what was typed kept.
        return group_detail(request, uid, member_form=form, status=400)
    data = form.cleaned_data
    user = directory.upsert_user(
        uid=data["user_uid"] or None,
        name=data["name"] or None,
        surname=data["surname"] or None,
        email=data["email"] or None,
    )
    directory.set_membership(group=group, user=user, role=data["role"])
    messages.success(request, f"{user.uid} is now {data['role']} of {group.name}.")
    return redirect("maestrano_sandbox:group", uid=uid)


@require_POST
def group_use_app(request: HttpRequest, uid: str) -> HttpResponse:
    group = get_object_or_404(Group, uid=uid)
    app = get_object_or_404(RegisteredApp, api_id=request.POST.get("app", ""))
    directory.start_using_app(group=group, app=app)
    messages.success(request, f"{group.name} now uses {app}.")
    return redirect("maestrano_sandbox:group", uid=uid)


def _report(request: HttpRequest, delivery: AccountWebhookDelivery) -> None:
    text = (
        f"{delivery.method} {delivery.url}: {delivery.status} after {delivery.attempts} "
        f"attempt(s) (last answer: {delivery.response_status or delivery.last_error or '-'})."
    )
    if delivery.status == AccountWebhookDelivery.SUCCEEDED:
        messages.success(request, text)
    else:
        messages.error(request, text)


@require_POST
def group_cancel_app(request: HttpRequest, uid: str, api_id: str) -> HttpResponse:
    """The group cancels the service: DELETE webhook to the app, then the app leaves the group."""
    group = get_object_or_404(Group, uid=uid)
    app = get_object_or_404(RegisteredApp, api_id=api_id)
    _report(request, account_webhooks.cancel_group_service(group=group, app=app))
    return redirect("maestrano_sandbox:group", uid=uid)


@require_POST
def group_remove_member(request: HttpRequest, uid: str, user_uid: str) -> HttpResponse:
    """Remove a member: DELETE webhook to every app of the group, then the membership goes."""
    group = get_object_or_404(Group, uid=uid)
    user = get_object_or_404(PlatformUser, uid=user_uid)
    deliveries = account_webhooks.remove_user_from_group(group=group, user=user)
    for delivery in deliveries:
        _report(request, delivery)
    messages.success(request, f"{user.uid} removed from {group.name}.")
    return redirect("maestrano_sandbox:group", uid=uid)


@require_POST
def delivery_retry(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(AccountWebhookDelivery, pk=pk)
    _report(request, account_webhooks.redeliver(delivery))
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("maestrano_sandbox:group", uid=delivery.group_uid)


def user_detail(request: HttpRequest, uid: str) -> HttpResponse:
    user = get_object_or_404(PlatformUser, uid=uid)
    context = {
        "user": user,
        "memberships": user.memberships.select_related("group").prefetch_related("group__apps"),
        "sessions": user.sessions.select_related("group", "app")[:100],
    }
    return render(request, "maestrano_sandbox/user.html", context)
