"""Pages of the example application: list, create, edit and delete its records, sync status.

Every page works in the current company (:func:`maestrano_accounts.selectors.current_company`)
and every queryset is filtered by it, so another tenant's record answers 404
exactly like a missing one. Saving goes through the ORM in one transaction;
maestrano_sync turns those saves into pushes to Connec! on commit.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Model, ProtectedError, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from maestrano_accounts.models import Company
from maestrano_accounts.pages import local_url
from maestrano_accounts.permissions import (
    CompanyRoleRequiredMixin,
    Role,
    company_role_required,
    has_company_role,
)
from maestrano_accounts.selectors import current_company
from maestrano_integration.conf import ImproperlyConfiguredPreset, get_preset
from maestrano_integration.setting_types import InvalidSettingType
from maestrano_integration.strict_input import escape_unsafe, is_safe_text
from maestrano_integration.views import json_errors, unreadable_form_response
from maestrano_sync import inbox, push
from maestrano_sync import selectors as sync_selectors
from maestrano_sync import status as sync_status
from maestrano_sync.company_settings import change_lines, recent_changes
from maestrano_sync.company_settings import policy_for as sync_settings_policy
from maestrano_sync.forms import CompanySyncSettingsForm
from maestrano_sync.models import InboxEntry, OutboxEntry
from maestrano_sync.registry import registry

from . import dashboard, formatting
from .forms import (
    InvoiceForm,
    InvoiceLineFormSet,
    ItemForm,
    OrganizationForm,
    PersonForm,
    TenantModelForm,
)
from .models import Invoice, Item, Organization, Person

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
#: What the dashboard's retry button posts for the failed notifications (not an entity).
INBOX = "inbox"


def _company_or_redirect(request: HttpRequest) -> Company | HttpResponse:
    """The current company, or the response that sends the visitor where they can get one."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    company = current_company(request)
    if company is None:
        messages.info(request, "Open the application from the marketplace to choose a company.")
        return redirect("landing")
    return company


@require_safe
@never_cache
def landing(request: HttpRequest) -> HttpResponse:
    """The start page; a logged-in user with a company goes on to the dashboard (or ``next``).

    So the browser's Back button after a login never shows the "Log in" prompt again
    as if the user were logged out: the page is never cached, and asked again it sends
    a logged-in user on (a deep link ``?next=`` only when local).
    """
    if request.user.is_authenticated and current_company(request) is not None:
        next_url = local_url(
            request, request.GET.get("next", ""), fallback=reverse("maestrano_accounts:dashboard")
        )
        return HttpResponseRedirect(next_url)
    return render(request, "landing.html")


def _company_for_form(request: HttpRequest) -> Company | HttpResponse:
    """:func:`_company_or_redirect`, then, for a POSTed form that is not text (bytes that
    are not UTF-8, which Django reads as U+FFFD), the 400 that names its field: before
    anything reads or stores a field (``maestrano_integration.views.unreadable_form_response``)."""
    company = _company_or_redirect(request)
    if isinstance(company, HttpResponse):
        return company
    return unreadable_form_response(request) or company


class CompanyView(View):
    """Base of the tenant pages: resolves ``self.company`` or answers for the missing one
    (and refuses a form that is not text: :func:`_company_for_form`)."""

    company: Company

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        company = _company_for_form(request)
        if isinstance(company, HttpResponse):
            return company
        self.company = company
        return super().dispatch(request, *args, **kwargs)


class RecordPages(CompanyView):
    """List, create, edit and delete one model's records of the current company."""

    model: ClassVar[type[Model]]
    form_class: ClassVar[type[TenantModelForm]]
    #: URL name prefix (``crm:<prefix>-list`` ...) and page titles.
    prefix: ClassVar[str]
    title: ClassVar[str]
    singular: ClassVar[str]
    #: (header, function of the record) for the list page.
    columns: ClassVar[list[tuple[str, Any]]] = []
    search_fields: ClassVar[list[str]] = []
    select_related: ClassVar[list[str]] = []

    # --- queries ------------------------------------------------------------------
    def get_queryset(self) -> QuerySet:
        """The one place these pages read records: always this company's rows only, as the
        sync finds them (``Mapper.for_company``: the dashboard's "In Connec!" counts those
        of them linked to Connec!, ``maestrano_sync.idmap.mapped_counts``)."""
        queryset = registry.for_model(self.model).for_company(self.company)
        if self.select_related:
            queryset = queryset.select_related(*self.select_related)
        return queryset

    def get_object(self, pk: int) -> Model:
        record = self.get_queryset().filter(pk=pk).first()
        if record is None:
            raise Http404(f"No {self.singular} {pk} in this company")
        return record

    @property
    def entity(self) -> str:
        return registry.for_model(self.model).entity

    def connec_ids(self, records: list[Model]) -> dict[str, str]:
        return sync_selectors.connec_ids_for_pks(
            company=self.company, entity=self.entity, local_pks=[record.pk for record in records]
        )

    # --- rendering ----------------------------------------------------------------
    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "company": self.company,
            "title": self.title,
            "singular": self.singular,
            "prefix": self.prefix,
            "entity": self.entity,
            **extra,
        }

    def sandbox_record_url(self, connec_id: str | None) -> str:
        """The sandbox's page of the Connec! record, when the demo platform is mounted.

        Built on the preset's platform host (``api.host``), so that it opens the
        platform where the app talks to it (the demo serves it under another host
        name than the app).
        """
        if not connec_id or not getattr(settings, "MAESTRANO_SANDBOX", {}).get("ENABLED"):
            return ""
        try:
            path = reverse(
                "maestrano_sandbox:connec-record",
                kwargs={
                    "uid": self.company.group_uid,
                    "entity": self.entity,
                    "record_id": connec_id,
                },
            )
            preset = get_preset(self.company.preset)
        except (NoReverseMatch, ImproperlyConfiguredPreset, InvalidSettingType):
            # not an id the sandbox issued, or a marketplace no longer configured (or
            # unusable: maestrano.E039)
            return ""
        mount = reverse("maestrano_sandbox:home")
        return f"{preset.api_host}/{path.removeprefix(mount)}"


#: Different words of a search beyond these are ignored: each is a condition on every field.
MAX_SEARCH_WORDS = 8


def every_word_matches(query: str, *, fields: list[str]) -> Q:
    """The records where each word of ``query`` is in one of ``fields`` (any case): "Ada
    Lovelace" finds Ada Lovelace, whose first and last names hold one word each."""
    condition = Q()
    words = list(dict.fromkeys(word.lower() for word in query.split()))
    for word in words[:MAX_SEARCH_WORDS]:
        in_some_field = Q()
        for name in fields:
            in_some_field |= Q(**{f"{name}__icontains": word})
        condition &= in_some_field
    return condition


class ListPage(RecordPages):
    template_name = "crm/record_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        queryset = self.get_queryset()
        query = request.GET.get("q", "").strip()[:100]
        if not is_safe_text(query):
            # No record holds a NUL or a lone surrogate (and PostgreSQL refuses the query).
            queryset, query = queryset.none(), escape_unsafe(query)
        elif query and self.search_fields:
            queryset = queryset.filter(every_word_matches(query, fields=self.search_fields))
        page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
        records = list(page)
        statuses = sync_status.record_statuses(
            company=self.company, model=self.model, pks=[record.pk for record in records]
        )
        rows = [
            {
                "record": record,
                "cells": [(header, render_cell(record)) for header, render_cell in self.columns],
                "sync": statuses.get(str(record.pk)),
            }
            for record in records
        ]
        context = self.context(
            page=page,
            rows=rows,
            headers=[header for header, _ in self.columns],
            query=query,
        )
        return render(request, self.template_name, context)


class EditPage(RecordPages):
    """Create (no ``pk``) or edit a record; POST saves and comes back with a message."""

    template_name = "crm/record_form.html"

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        record = self.get_object(pk) if pk is not None else None
        form = self.form_class(instance=record, company=self.company)
        return self.render_form(record, form)

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        record = self.get_object(pk) if pk is not None else None
        form = self.form_class(request.POST, instance=record, company=self.company)
        if not form.is_valid():
            return self.render_form(record, form, status=400)
        with transaction.atomic():
            saved = form.save()
        self.saved(saved, created=record is None)
        return redirect(f"crm:{self.prefix}-edit", pk=saved.pk)

    def saved(self, record: Model, *, created: bool) -> None:
        logger.info(
            "%s %s %s",
            self.singular.capitalize(),
            record.pk,
            "created" if created else "updated",
            extra={"group": self.company.group_uid, "entity": self.entity, "id": record.pk},
        )
        verb = "created" if created else "saved"
        policy = sync_settings_policy(company_id=self.company.pk)
        if sync_status.held_reason(policy=policy, entity=self.entity):
            message = f"{record} {verb}; it waits here while it is not sent to Connec!."
        else:
            message = f"{record} {verb}; it syncs to Connec!."
        messages.success(request=self.request, message=message)

    def render_form(
        self, record: Model | None, form: Any, *, status: int = 200, **extra: Any
    ) -> HttpResponse:
        sync = sync_status.record_status(company=self.company, obj=record) if record else None
        connec_id = sync.connec_id if sync else ""
        context = self.context(
            record=record,
            form=form,
            sync=sync,
            connec_id=connec_id,
            sandbox_url=self.sandbox_record_url(connec_id),
            problem=self.problem_of(record) if record and sync and sync.is_problem else None,
            is_admin=has_company_role(self.request, "Admin"),
            **extra,
        )
        return render(self.request, self.template_name, context, status=status)

    def problem_of(self, record: Model) -> sync_status.SyncProblem | None:
        """The problems panel's entry for this record (its retry button posts it)."""
        for problem in sync_status.problems(company=self.company):
            if problem.entity == self.entity and problem.object_id == str(record.pk):
                return problem
        return None


@json_errors
class StatusPage(RecordPages):
    """``GET <record>/sync.json``: the record's sync status, polled by its page (a JSON
    endpoint: a request Django refuses on its path answers JSON too)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        status = sync_status.record_status(company=self.company, obj=self.get_object(pk))
        # ``at`` as the page shows it (the company's timezone), for the page's poll.
        response = JsonResponse({**status.as_json(), "at_text": formatting.when(status.at)})
        response["Cache-Control"] = "no-store"
        return response


class DeletePage(CompanyRoleRequiredMixin, RecordPages):
    """Deleting removes the record from Connec! too, for all the company's apps: Admins only."""

    required_role = Role.ADMIN
    template_name = "crm/record_confirm_delete.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return render(request, self.template_name, self.context(record=self.get_object(pk)))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        record = self.get_object(pk)
        label = str(record)
        try:
            with transaction.atomic():
                record.delete()
        except ProtectedError:
            messages.error(
                request, f"{label} is still used (by an invoice or its lines): it was not deleted."
            )
            return redirect(f"crm:{self.prefix}-edit", pk=pk)
        messages.success(request, f"{label} deleted.")
        return redirect(f"crm:{self.prefix}-list")


# --- the four kinds of records -------------------------------------------------------------


def _money(value: Any, currency: str = "") -> str:
    """An amount in the company's format (:mod:`crm.formatting`), with its currency."""
    return formatting.amount(value, currency)


class OrganizationPages(RecordPages):
    model = Organization
    form_class = OrganizationForm
    prefix = "organization"
    title = "Organizations"
    singular = "organization"
    search_fields = ["name", "email", "city"]
    columns: ClassVar[list[tuple[str, Any]]] = [
        ("Name", lambda record: record.name),
        (
            "Kind",
            lambda record: " & ".join(
                label
                for flag, label in (
                    (record.is_customer, "customer"),
                    (record.is_supplier, "supplier"),
                )
                if flag
            ),
        ),
        ("Email", lambda record: record.email),
        ("City", lambda record: record.city),
    ]


class PersonPages(RecordPages):
    model = Person
    form_class = PersonForm
    prefix = "person"
    title = "People"
    singular = "person"
    search_fields = ["first_name", "last_name", "email", "job_title"]
    select_related = ["organization"]
    columns: ClassVar[list[tuple[str, Any]]] = [
        ("Name", lambda record: str(record)),
        ("Job title", lambda record: record.job_title),
        ("Email", lambda record: record.email),
        ("Organization", lambda record: str(record.organization or "")),
    ]


class ItemPages(RecordPages):
    model = Item
    form_class = ItemForm
    prefix = "item"
    title = "Items"
    singular = "item"
    search_fields = ["code", "name"]
    columns: ClassVar[list[tuple[str, Any]]] = [
        ("Code", lambda record: record.code),
        ("Name", lambda record: record.name),
        ("Sale price", lambda record: _money(record.sale_price, record.currency)),
    ]


class InvoicePages(RecordPages):
    model = Invoice
    form_class = InvoiceForm
    prefix = "invoice"
    title = "Invoices"
    singular = "invoice"
    search_fields = ["number", "organization__name"]
    select_related = ["organization"]
    columns: ClassVar[list[tuple[str, Any]]] = [
        ("Number", lambda record: str(record)),
        ("Type", lambda record: record.get_type_display()),
        (
            "Date",
            lambda record: formatting.day(record.transaction_date),
        ),
        ("Customer / supplier", lambda record: str(record.organization or "")),
        ("Status", lambda record: record.get_status_display()),
        ("Total", lambda record: _money(record.total)),
    ]


class OrganizationList(OrganizationPages, ListPage):
    pass


class OrganizationEdit(OrganizationPages, EditPage):
    pass


class OrganizationDelete(OrganizationPages, DeletePage):
    pass


class OrganizationStatus(OrganizationPages, StatusPage):
    pass


class PersonList(PersonPages, ListPage):
    pass


class PersonEdit(PersonPages, EditPage):
    pass


class PersonDelete(PersonPages, DeletePage):
    pass


class PersonStatus(PersonPages, StatusPage):
    pass


class ItemList(ItemPages, ListPage):
    pass


class ItemEdit(ItemPages, EditPage):
    pass


class ItemDelete(ItemPages, DeletePage):
    pass


class ItemStatus(ItemPages, StatusPage):
    pass


class InvoiceList(InvoicePages, ListPage):
    pass


class InvoiceDelete(InvoicePages, DeletePage):
    pass


class InvoiceStatus(InvoicePages, StatusPage):
    pass


class InvoiceEdit(InvoicePages, EditPage):
    """An invoice and its lines on one page; the total is the sum of the lines."""

    template_name = "crm/invoice_form.html"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().prefetch_related("lines__item")

    def get_object(self, pk: int) -> Invoice:
        invoice = super().get_object(pk)
        assert isinstance(invoice, Invoice)  # this page's model
        return invoice

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        record = self.get_object(pk) if pk is not None else None
        form = self.form_class(instance=record, company=self.company)
        lines = InvoiceLineFormSet(instance=record or Invoice(), company=self.company)
        return self.render_form(record, form, lines=lines)

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        record = self.get_object(pk) if pk is not None else None
        form = self.form_class(request.POST, instance=record, company=self.company)
        lines = InvoiceLineFormSet(request.POST, instance=record or Invoice(), company=self.company)
        if not (form.is_valid() and lines.is_valid()):
            return self.render_form(record, form, status=400, lines=lines)
        try:
            with transaction.atomic():
                invoice = form.save(commit=False)
                invoice.total = lines.total()
                invoice.save()
                lines.save_numbered(invoice=invoice)
        except IntegrityError:
            # Another save of the same invoice changed its lines at the same moment.
            lines.non_form_errors().append(lines.STALE_MESSAGE)
            return self.render_form(record, form, status=409, lines=lines)
        self.saved(invoice, created=record is None)
        return redirect("crm:invoice-edit", pk=invoice.pk)


# --- sync: live import progress, parked errors ------------------------------------------


@json_errors
@require_GET
@never_cache
def import_progress(request: HttpRequest) -> HttpResponse:
    """JSON polled by the dashboard while the initial import runs."""
    company = current_company(request) if request.user.is_authenticated else None
    if company is None:
        return JsonResponse({"error": "No current company"}, status=403)
    return JsonResponse(dashboard.import_progress(company=company).as_json())


def _retry_parked(*, company: Company, what: str) -> int:
    """Queue the company's parked pushes of one entity, or its failed notifications, again."""
    if what == INBOX:
        entries = InboxEntry.objects.filter(company=company)
        return inbox.retry_failed_entries(queryset=entries)
    if what not in registry.entities():
        raise Http404("Unknown entity")
    return push.retry_parked(queryset=OutboxEntry.objects.filter(company=company, entity=what))


@require_POST
@company_role_required(Role.ADMIN)
def retry_parked(request: HttpRequest) -> HttpResponse:
    """Retry the current company's parked sync errors (the dashboard's button): Admins only,
    like every change to how the company's data syncs."""
    company = _company_for_form(request)
    if isinstance(company, HttpResponse):
        return company
    if not has_company_role(request, "Admin"):
        raise PermissionDenied("Only the company's admins can retry sync problems.")
    count = _retry_parked(company=company, what=request.POST.get("entity", ""))
    if count:
        messages.success(request, f"{count} parked change(s) queued again.")
    else:
        messages.info(request, "Nothing to retry.")
    # At the confirmation (the page's messages, on top): not scrolled out of view.
    return HttpResponseRedirect(reverse("maestrano_accounts:dashboard") + "#messages")


PROBLEM_KINDS = ("outbox", "record", "notification")


@require_POST
def retry_problem(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Retry one item of the problems panel (admins only), then go back where it was shown."""
    company = _company_for_form(request)
    if isinstance(company, HttpResponse):
        return company
    if kind not in PROBLEM_KINDS:
        raise Http404("Unknown kind of sync problem")
    if not has_company_role(request, "Admin"):
        raise PermissionDenied("Only the company's admins can retry sync problems.")
    if sync_status.retry_problem(company=company, kind=kind, pk=pk):
        messages.success(request, "Queued again: the status below shows how it went.")
    else:
        messages.info(request, "Nothing to retry: it was already dealt with.")
    next_url = local_url(
        request,
        request.POST.get("next", ""),
        fallback=reverse("maestrano_accounts:dashboard") + "#messages",
    )
    return HttpResponseRedirect(next_url)


@company_role_required(Role.ADMIN)
def sync_settings(request: HttpRequest) -> HttpResponse:
    """What the current company syncs with Connec! (Admins only): the reusable form of
    ``maestrano_sync.forms``, saved through ``maestrano_sync.company_settings`` (checked, recorded,
    immediate)."""
    company = _company_for_form(request)
    if isinstance(company, HttpResponse):
        return company
    form = CompanySyncSettingsForm(request.POST or None, company=company)
    if request.method == "POST" and form.is_valid():
        change = form.save(changed_by=request.user)
        if not form.errors:
            if change is None:
                messages.info(request, "Nothing changed.")
            else:
                messages.success(request, "Sync settings saved; they apply from now on.")
            return HttpResponseRedirect(reverse("crm:sync-settings"))
    return render(
        request,
        "crm/sync_settings.html",
        {
            "company": company,
            "form": form,
            "changes": [
                (change, change_lines(change)) for change in recent_changes(company=company)
            ],
        },
        status=400 if form.errors else 200,
    )
