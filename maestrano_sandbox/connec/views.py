"""Sandbox pages for the Connec! hub: browse records, write "as another app", deliveries, faults.

Writes from these pages go through the same code as the API (validation,
timestamps, notifications), as the sandbox itself or as one of the group's apps.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from maestrano_integration import strict_input
from maestrano_sandbox.faults import validate_rates
from maestrano_sandbox.models import (
    CONNEC_ENTITIES,
    ConnecRecord,
    FaultConfig,
    Group,
    NotificationDelivery,
    RegisteredApp,
)

from .api import Operation, run_and_notify
from .errors import ConnecApiError
from .references import render_record

PAGE_SIZE = 50
AS_SANDBOX = ""


class RecordForm(forms.Form):
    fields_json = forms.CharField(
        label="Fields (JSON)", widget=forms.Textarea(attrs={"rows": 10, "cols": 70})
    )
    write_as = forms.ChoiceField(label="Write as", required=False)

    def __init__(self, *args: Any, group: Group, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(AS_SANDBOX, "Another app (the sandbox): every app of the group is notified")]
        choices += [(app.api_id, f"{app.api_id} (not notified)") for app in group.apps.all()]
        cast(forms.ChoiceField, self.fields["write_as"]).choices = choices

    def clean_fields_json(self) -> dict[str, Any]:
        try:
            value = strict_input.loads(self.cleaned_data["fields_json"])
        except strict_input.InputRefused as error:
            raise forms.ValidationError(f"Refused: {error}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Give an object, e.g. {"first_name": "Ada"}')
        return value


class FaultConfigForm(forms.ModelForm):
    class Meta:
        model = FaultConfig
        fields = [
            "enabled",
            "scope",
            "error_rate",
            "error_status",
            "rate_limit_rate",
            "retry_after",
            "latency_ms",
            "drop_rate",
            "gateway_timeout_rate",
            "seed",
        ]
        # What each setting does to the app's calls, in plain words (the page shows them
        # under the fields, which name them in aria-describedby).
        help_texts = {
            "enabled": "Untick to switch the faults off without losing the values below.",
            "scope": "Which of the app's calls can fail: Connec!, the Account API and "
            "session checks, or only some. Pages and sign-in are never affected.",
            "error_rate": "Share of calls that fail with a server error (5xx) and change "
            "nothing: 0.1 is one call in ten, 0 none, 1 all.",
            "error_status": "The status of those errors, 500 to 599; empty: 500, 502, 503 "
            "or 504, drawn at random.",
            "rate_limit_rate": "Share of calls refused with 429 Too Many Requests, as a "
            "busy platform does; the app should wait and try again.",
            "retry_after": "Seconds the 429 answers tell the app to wait (Retry-After).",
            "latency_ms": "Milliseconds added to every call, to try a slow platform.",
            "drop_rate": "Share of calls whose connection is closed with no answer at all, "
            "as a crashed proxy does; nothing is changed.",
            "gateway_timeout_rate": "Share of calls that are carried out, then answered 504 "
            "Gateway Timeout: the change is made but the app is not told.",
            "seed": "Any whole number makes the faults come in the same order each time "
            "(saving starts the order again); empty: a different order each time.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A form without this newer rate (an older page, a script) means none of those.
        self.fields["gateway_timeout_rate"].required = False

    def clean_gateway_timeout_rate(self) -> float:
        return self.cleaned_data.get("gateway_timeout_rate") or 0.0

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        try:
            validate_rates(
                error_rate=data.get("error_rate") or 0.0,
                rate_limit_rate=data.get("rate_limit_rate") or 0.0,
                drop_rate=data.get("drop_rate") or 0.0,
                gateway_timeout_rate=data.get("gateway_timeout_rate") or 0.0,
            )
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return data


def write_from_form(
    request: HttpRequest, *, group: Group, entity: str, form: RecordForm, record_id: str | None
) -> ConnecRecord | None:
    app = None
    if form.cleaned_data["write_as"]:
        app = group.apps.filter(api_id=form.cleaned_data["write_as"]).first()
    operation = Operation(
        method="PUT" if record_id else "POST",
        group_uid=group.uid,
        entity=entity,
        record_id=record_id,
        body={entity: form.cleaned_data["fields_json"]},
    )
    try:
        outcome = run_and_notify(operation, app=app)
    except ConnecApiError as error:
        for problem in error.problems:
            form.add_error("fields_json", f"{error.status}: {problem.detail}")
        return None
    record = outcome.changed[0]
    who = app.api_id if app else "the sandbox"
    messages.success(request, f"{entity} {record.uid} saved as {who}.")
    return record


def connec_home(request: HttpRequest) -> HttpResponse:
    counts: dict[int, dict[str, int]] = {}
    rows = ConnecRecord.objects.values("group_id", "entity").annotate(count=Count("id"))
    for row in rows:
        counts.setdefault(row["group_id"], {})[row["entity"]] = row["count"]
    groups = [
        {"group": group, "counts": [counts.get(group.pk, {}).get(e, 0) for e in CONNEC_ENTITIES]}
        for group in Group.objects.prefetch_related("apps")
    ]
    return render(
        request,
        "maestrano_sandbox/connec/home.html",
        {
            "groups": groups,
            "entities": CONNEC_ENTITIES,
            "deliveries": NotificationDelivery.objects.select_related("app", "group")[:10],
        },
    )


@require_http_methods(["GET", "POST"])
def group_records(request: HttpRequest, uid: str, entity: str = "people") -> HttpResponse:
    group = get_object_or_404(Group, uid=uid)
    if entity not in CONNEC_ENTITIES:
        return redirect("maestrano_sandbox:connec-group", uid=uid)
    form = RecordForm(request.POST or None, group=group)
    if request.method == "POST" and form.is_valid():
        record = write_from_form(request, group=group, entity=entity, form=form, record_id=None)
        if record is not None:
            return redirect(
                "maestrano_sandbox:connec-record", uid=uid, entity=entity, record_id=record.uid
            )
    records = ConnecRecord.objects.filter(group=group, entity=entity).select_related("written_by")
    page = Paginator(records.order_by("-updated_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "maestrano_sandbox/connec/group.html",
        {
            "group": group,
            "entity": entity,
            "entities": CONNEC_ENTITIES,
            "page": page,
            "rows": [
                (record, displayable(record.data.get("code")), displayable(summary(record)))
                for record in page
            ],
            "form": form,
        },
    )


def displayable(value: Any) -> str:
    """``value`` as text a page can always render: a lone surrogate (in a record stored
    before the API refused them) is shown escaped instead of failing the whole page."""
    return strict_input.escape_unsafe("" if value is None else str(value))


def summary(record: ConnecRecord) -> str:
    data = record.data
    if record.entity == "people":
        return f"{data.get('first_name') or ''} {data.get('last_name') or ''}".strip()
    if record.entity == "invoices":
        return f"{data.get('type', '')} {data.get('status', '')} {data.get('total_amount', '')}"
    return str(data.get("name") or "")


@require_http_methods(["GET", "POST"])
def record_detail(request: HttpRequest, uid: str, entity: str, record_id: str) -> HttpResponse:
    group = get_object_or_404(Group, uid=uid)
    record = get_object_or_404(ConnecRecord, group=group, entity=entity, uid=record_id)
    initial = {"fields_json": json.dumps(record.data, indent=2, ensure_ascii=False)}
    form = RecordForm(request.POST or None, group=group, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = write_from_form(
            request, group=group, entity=entity, form=form, record_id=str(record.uid)
        )
        if saved is not None:
            return redirect(
                "maestrano_sandbox:connec-record", uid=uid, entity=entity, record_id=record.uid
            )
    rendered = render_record(record, group=group, external_ids=True)
    return render(
        request,
        "maestrano_sandbox/connec/record.html",
        {
            "group": group,
            "entity": entity,
            "record": record,
            "as_json": json.dumps(rendered, indent=2, ensure_ascii=False),
            "form": form,
            "deliveries": NotificationDelivery.objects.filter(group=group).select_related("app")[
                :10
            ],
        },
    )


def deliveries(request: HttpRequest) -> HttpResponse:
    rows = NotificationDelivery.objects.select_related("app", "group", "source_app")
    group_uid = request.GET.get("group")
    if group_uid:
        rows = rows.filter(group__uid=group_uid)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "maestrano_sandbox/connec/deliveries.html",
        {"page": page, "group_uid": group_uid or ""},
    )


@require_POST
def delivery_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a failed delivery again (attempts restart from its current count)."""
    from .notifications import wake_worker

    updated = NotificationDelivery.objects.filter(pk=pk, status=NotificationDelivery.FAILED).update(
        status=NotificationDelivery.PENDING, next_attempt_at=timezone.now()
    )
    if updated:
        wake_worker()
        messages.success(request, f"Delivery {pk} queued again.")
    return redirect("maestrano_sandbox:connec-deliveries")


@require_http_methods(["GET", "POST"])
def faults(request: HttpRequest) -> HttpResponse:
    apps = list(RegisteredApp.objects.all())
    configs = {c.app_id: c for c in FaultConfig.objects.filter(app__in=apps)}
    posted = request.POST.get("app") if request.method == "POST" else None
    rows = []
    for app in apps:
        saved = configs.get(app.pk)
        # What is in force: the saved row, read before a refused form changes the instance.
        active = saved is not None and saved.is_active
        instance = saved or FaultConfig(app=app)
        data = request.POST if posted == app.api_id else None
        form = FaultConfigForm(data, instance=instance, prefix=app.api_id)
        if data is not None and form.is_valid():
            form.save()
            messages.success(request, f"Faults saved for {app.api_id}.")
            return redirect("maestrano_sandbox:connec-faults")
        rows.append({"app": app, "form": form, "configured": saved is not None, "active": active})
    return render(request, "maestrano_sandbox/connec/faults.html", {"rows": rows})


@require_POST
def faults_clear(request: HttpRequest, api_id: str) -> HttpResponse:
    FaultConfig.objects.filter(app__api_id=api_id).delete()
    messages.success(request, f"Faults cleared for {api_id}.")
    return redirect("maestrano_sandbox:connec-faults")
