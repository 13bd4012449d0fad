"""Billing services: the company's subscription (a recurring bill) and ad-hoc bills.

Billing is set up when a company is created, never charging
before the free trial ends; extra charges are sent as ad-hoc bills (docs/protocol.md,
'Integration duties').

The Account API has no idempotency key and a create (POST) may be applied even
when its answer is lost. So every bill is first written here with a unique
reference that also goes into the platform description; a submission takes a
lease and counts an attempt *before* sending, and any later submission
of a record that was possibly sent first lists the group's bills on the
platform and adopts the one carrying the reference instead of sending again.

A create that got no answer (a timeout, a connection dropped after sending) may
still be applied later by a slow platform, so its record keeps the lease for
:func:`answer_grace`: nothing sends it again before, and the reference is looked up
only once a write in progress would have landed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from maestrano_accounts.adapter import get_adapter
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.signals import charge_billed
from maestrano_integration.account import (
    AccountApiError,
    AccountClient,
    AccountNotFoundError,
    AccountValidationError,
    Bill,
    RecurringBill,
)
from maestrano_integration.checks import closest_key
from maestrano_integration.conf import ImproperlyConfiguredPreset, maestrano_settings
from maestrano_integration.saml import SsoAttributes
from maestrano_integration.strict_input import is_safe_text

from .conf import FREE_TRIAL_SOURCES, billing_settings
from .currencies import is_iso_4217
from .models import MAX_FREE_TRIAL_DAYS, AdHocCharge, BillingPeriod, CompanySubscription, Plan

#: The statuses of a charge whose bill the platform holds and bills: what was bought is
#: granted (``charge_billed``) and counts; a cancelled bill's does not.
BILLED_CHARGE_STATUSES = frozenset({AdHocCharge.Status.SUBMITTED, AdHocCharge.Status.INVOICED})

logger = logging.getLogger(__name__)

MAX_DESCRIPTION_LENGTH = 200
MAX_IDEMPOTENCY_KEY_LENGTH = 100
#: ``AdHocCharge.product``.
MAX_PRODUCT_LENGTH = 64
# A start date this close to now is sent as "now" (omitted), so that the
# platform's "not in the past" rule cannot refuse it on clock skew.
_START_NOW_MARGIN = dt.timedelta(minutes=1)
_MAX_ERROR_LENGTH = 2000

OPEN_SUBSCRIPTION_STATUSES = (
    CompanySubscription.Status.PENDING,
    CompanySubscription.Status.SUBMITTED,
    CompanySubscription.Status.ACTIVE,
    CompanySubscription.Status.FAILED,
)


# --- errors ---------------------------------------------------------------------------


class BillingError(Exception):
    """Billing could not be done; see the message."""


class InvalidBill(BillingError, ValueError):
    """A bill refused locally, before any HTTP call.

    ``errors`` has the platform envelope's shape (``{field: [messages]}``) so
    callers show local and platform refusals the same way.
    """

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        super().__init__(
            "; ".join(f"{name}: {message}" for name, ms in self.errors.items() for message in ms)
        )


class IdempotencyKeyReused(InvalidBill):
    """The idempotency key was already used for a different charge of this company."""


# --- settings and plans ---------------------------------------------------------------


def billing_enabled() -> bool:
    return billing_settings().enabled


class InvalidDefaultPlan(BillingError):
    """``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` is outside a plan's limits (check
    ``maestrano.E032``): the plan is not created. ``errors``: ``{key: [messages]}``."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        super().__init__(
            "MAESTRANO['BILLING']['DEFAULT_PLAN'] is outside a plan's limits, so the plan is "
            "not created and no company is subscribed to it: "
            + "; ".join(f"{key}: {message}" for key, ms in self.errors.items() for message in ms)
        )


def get_default_plan() -> Plan:
    """The plan named in ``MAESTRANO["BILLING"]["DEFAULT_PLAN"]``, created on first use.

    An existing plan of that name is used as is: prices edited in the admin win
    over the settings. Created only within a plan's limits, those the admin enforces
    (:func:`default_plan_errors`); else raises :class:`InvalidDefaultPlan` and stores nothing.
    """
    plan, errors = _default_plan_from_settings()
    existing = None if "name" in errors else Plan.objects.filter(name=plan.name).first()
    if existing is not None:
        return existing
    if errors:
        raise InvalidDefaultPlan(errors)
    fields = {key: getattr(plan, key) for key in _PLAN_FIELDS}
    plan, created = Plan.objects.get_or_create(name=plan.name, defaults=fields)
    if created:
        logger.info("Default billing plan created", extra={"plan": plan.name})
    return plan


def default_plan_errors() -> dict[str, list[str]]:
    """What ``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` breaks of a plan's limits, ``{key:
    [messages]}`` (empty: none): the model's own validation, as in the admin (a trial of at
    most ``MAX_FREE_TRIAL_DAYS`` days, a frequency of 1 or more, a known period, a price in
    whole cents ≥ 0...). No database query: the system check ``maestrano.E032`` reports it."""
    return _default_plan_from_settings()[1]


_PLAN_FIELDS = ("price_cents", "period", "frequency", "currency", "free_trial_days", "per_user")
_WHOLE_NUMBER_FIELDS = ("price_cents", "frequency", "free_trial_days")
#: The keys ``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` accepts: the plan's name and the
#: fields it is created with. Any other key is read by nothing.
DEFAULT_PLAN_KEYS = ("name", *_PLAN_FIELDS)


def default_plan_unknown_keys() -> list[str]:
    """The keys of ``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` outside :data:`DEFAULT_PLAN_KEYS`
    (``free_trail_days``, ``price`` for ``price_cents``): the plan is created without
    them, so it is not the one the setting meant. The system check ``maestrano.E033``
    reports them; nothing else refuses them."""
    config = billing_settings().default_plan
    if not isinstance(config, Mapping):
        return []
    return sorted(str(key) for key in config if key not in DEFAULT_PLAN_KEYS)


def _default_plan_from_settings() -> tuple[Plan, dict[str, list[str]]]:
    """The default plan the settings describe (not saved; its values cleaned) and its errors."""
    config = billing_settings().default_plan
    fields = {key: config[key] for key in _PLAN_FIELDS if key in config}
    # The model field would read 29.99 as 29 (int()): a setting is a whole number or its text.
    errors = {
        key: ["Enter a whole number."]
        for key in _WHOLE_NUMBER_FIELDS
        if key in fields
        and (isinstance(fields[key], bool) or not isinstance(fields[key], int | str))
    }
    # A missing name is None until full_clean below refuses it.
    plan = Plan(
        name=config.get("name"),  # type: ignore[misc]
        **{k: v for k, v in fields.items() if k not in errors},
    )
    try:
        plan.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        errors = {**error.message_dict, **errors}
    return plan, errors


# --- products (in-app purchases) --------------------------------------------------------

#: The keys of a product of ``MAESTRANO["BILLING"]["PRODUCTS"]``; ``units`` is optional.
PRODUCT_KEYS = ("description", "amount_cents", "units")
#: A product's key: a slug (Django's ``<slug:...>``), the URL's ``buy/<key>/`` and the
#: ``product`` of its charges (``AdHocCharge.product``).
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


@dataclass(frozen=True)
class Product:
    """A product the company's Admins may buy (``MAESTRANO["BILLING"]["PRODUCTS"]``): each
    purchase is an ad-hoc bill of ``amount_cents`` with ``description`` and ``units``, and
    its charge's ``product`` is ``key`` (what ``charge_billed`` receivers tell it by)."""

    key: str
    description: str
    amount_cents: int
    units: Decimal | None = None


def _product_from(key: Any, config: Any) -> tuple[Product | None, list[str]]:
    """The product that ``PRODUCTS[key] = config`` describes, or the reasons it is not one
    (the rules of a bill, :func:`validate_charge`, and a price above 0)."""
    if not isinstance(key, str) or not _SLUG.fullmatch(key):
        return None, ["its key must be a slug (letters, digits, '-' and '_'): it is in its URL"]
    if len(key) > MAX_PRODUCT_LENGTH:
        return None, [f"its key is too long (at most {MAX_PRODUCT_LENGTH} characters)"]
    if not isinstance(config, Mapping):
        return None, [f"must be a dict with {', '.join(PRODUCT_KEYS)}, not {config!r}"]
    problems = []
    for unknown in sorted(str(name) for name in config if name not in PRODUCT_KEYS):
        close = closest_key(unknown, PRODUCT_KEYS)
        problems.append(
            f"{unknown!r} is not a product's key" + (f" (did you mean {close!r}?)" if close else "")
        )
    description: Any = config.get("description")
    if problem := _description_problem(description):
        problems.append(f"description {problem}")
    amount: Any = config.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        problems.append(f"amount_cents must be a whole number of cents above 0, not {amount!r}")
    units = config.get("units")
    if isinstance(units, bool | float):
        # 0.1 is not exactly a tenth: a text or a Decimal is the number written.
        problems.append(f'units must be a text or a Decimal ("100"), not {units!r}')
        quantity = None
    else:
        quantity, problem = _units_of(units)
        if problem:
            problems.append(f"units {problem}")
    if problems:
        return None, problems
    product = Product(key=key, description=description.strip(), amount_cents=amount, units=quantity)
    return product, []


def product_errors() -> dict[str, list[str]]:
    """What is wrong with ``MAESTRANO["BILLING"]["PRODUCTS"]``, ``{product key: [reasons]}``
    (empty: nothing). Such a product is not offered; the system check ``maestrano.E040``
    reports it."""
    errors = {}
    for key, config in billing_settings().products.items():
        problems = _product_from(key, config)[1]
        if problems:
            errors[str(key)] = problems
    return errors


def offered_products() -> list[Product]:
    """The products of ``MAESTRANO["BILLING"]["PRODUCTS"]`` the company's Admins may buy, in
    the setting's order (none by default). One the setting gets wrong is left out and
    logged (``maestrano.E040`` says why): the others are still offered."""
    products = []
    for key, config in billing_settings().products.items():
        product, problems = _product_from(key, config)
        if product is None:
            logger.error(
                "Billing product not offered: its setting is invalid",
                extra={"product": str(key), "errors": problems},
            )
            continue
        products.append(product)
    return products


def offered_product(key: str) -> Product | None:
    """The offered product ``key`` (``None``: none of that key, or one set wrong)."""
    return next((product for product in offered_products() if product.key == key), None)


def billing_start_date(
    *, company: Company, plan: Plan, now: dt.datetime | None = None
) -> dt.datetime:
    """When the first recurring charge may happen: after the free trial, never before now.

    ``FREE_TRIAL_SOURCE`` picks the trial: ``"group"`` (the platform's
    ``group_end_free_trial``), ``"plan"`` (the plan's trial days, counted from
    the company's creation, so a reactivated company gets no second trial) or
    ``"latest"`` (whichever ends later).

    A plan's trial is at most :data:`~maestrano_accounts.billing.models.MAX_FREE_TRIAL_DAYS`
    (the model refuses more); a longer one stored before that rule counts as the longest
    (:func:`plan_trial_end`), so that no stored plan makes this raise.
    """
    now = now or timezone.now()
    source = billing_settings().free_trial_source
    if source not in FREE_TRIAL_SOURCES:
        raise BillingError(
            f"MAESTRANO['BILLING']['FREE_TRIAL_SOURCE'] must be one of {FREE_TRIAL_SOURCES}, "
            f"not {source!r}"
        )
    group_end = company.free_trial_end_at
    created = company.created_at or now
    plan_end = plan_trial_end(created=created, days=plan.free_trial_days)
    candidates = {
        "group": [group_end],
        "plan": [plan_end],
        "latest": [group_end, plan_end],
    }[source]
    return max([now, *(moment for moment in candidates if moment is not None)])


#: The latest moment billing computes (a plan's trial end, a next charge): a day short of the
#: largest datetime, so that it still converts to every time zone (``+14:00`` included) and
#: formats.
LATEST_BILLING_MOMENT = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def effective_trial_days(*, days: int) -> int:
    """The free days a plan's ``free_trial_days`` gives: 0 for none, at most
    :data:`~maestrano_accounts.billing.models.MAX_FREE_TRIAL_DAYS` (a longer trial stored
    before that rule counts as the longest; docs/billing.md, 'The free trial')."""
    return min(max(days, 0), MAX_FREE_TRIAL_DAYS)


def plan_trial_end(*, created: dt.datetime, days: int) -> dt.datetime | None:
    """When a plan's trial of ``days`` days for a company created at ``created`` ends
    (``None``: no trial). Clamped, never raising: it lasts :func:`effective_trial_days`, and
    an end past :data:`LATEST_BILLING_MOMENT` is that moment (docs/billing.md, 'The free
    trial')."""
    days = effective_trial_days(days=days)
    if not days:
        return None
    try:
        end = created + dt.timedelta(days=days)
    except OverflowError:
        return LATEST_BILLING_MOMENT
    return min(end, LATEST_BILLING_MOMENT)


# --- subscriptions (recurring bills) --------------------------------------------------


def open_subscription(*, company: Company) -> CompanySubscription | None:
    """The company's subscription that is not cancelled (at most one exists)."""
    return (
        CompanySubscription.objects.filter(company=company)
        .exclude(status=CompanySubscription.Status.CANCELLED)
        .select_related("plan", "company")
        .first()
    )


def offered_plans() -> list[Plan]:
    """The plans a company may choose, cheapest first; the default plan is always created
    (unless its setting is outside a plan's limits: logged, and the other plans offered)."""
    try:
        get_default_plan()
    except InvalidDefaultPlan as error:
        logger.error(
            "Default billing plan not created: its setting is outside a plan's limits",
            extra={"errors": error.errors},
        )
    return list(Plan.objects.filter(offered=True))


def initial_plan(*, company: Company, attributes: SsoAttributes | None = None) -> Plan | None:
    """The plan a new (or reactivated) company starts on, or ``None`` to let its Admin choose.

    A reactivated company keeps its last plan while it is still offered; otherwise
    the adapter's :meth:`~maestrano_accounts.adapter.DefaultAccountAdapter.choose_plan` decides
    (``attributes`` are those of the login that created the company, if any).
    """
    previous = (
        CompanySubscription.objects.filter(company=company, plan__offered=True)
        .select_related("plan")
        .first()
    )
    if previous is not None:
        return previous.plan
    return get_adapter().choose_plan(company, plans=offered_plans(), attributes=attributes)


def billed_units(*, company: Company, plan: Plan) -> int:
    """What ``plan`` bills ``company`` for: its active members on a per-user plan (at least
    one), else 1."""
    if not plan.per_user:
        return 1
    members = Membership.objects.filter(company=company, is_active=True).count()
    return max(1, members)


def _terms(*, company: Company, plan: Plan) -> dict[str, Any]:
    """The agreed terms of a new subscription of ``company`` to ``plan``."""
    units = billed_units(company=company, plan=plan)
    return {
        "plan": plan,
        "units": units,
        "price_cents": plan.price_cents * units,
        "currency": plan.currency,
        "period": plan.period,
        "frequency": plan.frequency,
    }


def start_subscription(*, company: Company, plan: Plan | None = None) -> CompanySubscription:
    """The company's open subscription, created (pending, local only) if there is none.

    Safe under concurrency: the "one open subscription per company" constraint
    refuses a second insert, which then reads the winner's row.
    """
    existing = open_subscription(company=company)
    if existing is not None:
        return existing
    plan = plan or get_default_plan()
    try:
        with transaction.atomic():
            subscription = CompanySubscription.objects.create(
                company=company,
                start_date=billing_start_date(company=company, plan=plan),
                **_terms(company=company, plan=plan),
            )
    except IntegrityError:
        existing = open_subscription(company=company)
        if existing is None:
            raise
        return existing
    logger.info(
        "Subscription recorded",
        extra={
            "preset": company.preset,
            "group": company.group_uid,
            "subscription": subscription.pk,
            "plan": plan.name,
        },
    )
    return subscription


def set_up_billing(*, company: Company, plan: Plan | None = None) -> CompanySubscription | None:
    """Make sure ``company`` has its recurring bill on the platform (docs/protocol.md,
    'Recurring bills').

    Idempotent: runs as often as needed (task retries, reactivation, the admin)
    and creates at most one recurring bill per subscription. Without a ``plan``
    and an open subscription, the plan is :func:`initial_plan`'s. Returns ``None``
    when billing is disabled, the company is cancelled or its Admin has a plan to
    choose. Raises :class:`AccountApiError` when the platform failed (the error is
    recorded on the subscription; transient ones are worth retrying).
    """
    if not billing_enabled():
        return None
    company.refresh_from_db(fields=["status"])
    if company.status != Company.Status.ACTIVE:
        logger.info(
            "Billing not set up for a cancelled company",
            extra={"preset": company.preset, "group": company.group_uid},
        )
        return None
    if plan is None and open_subscription(company=company) is None:
        plan = initial_plan(company=company)
        if plan is None:
            logger.info("Billing waits for the Admin's choice of plan", extra=_context(company))
            return None
    subscription = start_subscription(company=company, plan=plan)
    return submit_subscription(subscription=subscription)


# --- plan change and headcount ----------------------------------------------------------


@dataclass(frozen=True)
class Replacement:
    """A subscription whose terms changed: ``current`` is open; ``replaced`` (cancelled,
    or ``None`` when the old one was changed in place) still has its recurring bill to
    cancel on the platform."""

    current: CompanySubscription
    replaced: CompanySubscription | None


def change_plan(*, company: Company, plan: Plan) -> Replacement:
    """Move ``company`` to ``plan`` (local rows only; see :func:`replace_subscription`).

    Without an open subscription (the Admin's first choice, or after a cancellation
    on the platform) the subscription is simply started.
    """
    with transaction.atomic():
        current = (
            CompanySubscription.objects.select_for_update()
            .filter(company=company, status__in=OPEN_SUBSCRIPTION_STATUSES)
            .first()
        )
        if current is None:
            started = start_subscription(company=company, plan=plan)
            return Replacement(current=started, replaced=None)
        return replace_subscription(subscription=current, plan=plan)


def update_headcount(*, company: Company) -> Replacement | None:
    """Re-price a per-user subscription when the number of active members changed.

    ``None`` when there is nothing to do (no open subscription, a flat plan, the
    same headcount, or a cancelled company).
    """
    with transaction.atomic():
        current = (
            CompanySubscription.objects.select_for_update()
            .filter(
                company=company,
                status__in=OPEN_SUBSCRIPTION_STATUSES,
                company__status=Company.Status.ACTIVE,
            )
            .select_related("plan")
            .first()
        )
        if current is None or not current.plan.per_user:
            return None
        if billed_units(company=company, plan=current.plan) == current.units:
            return None
        return replace_subscription(subscription=current, plan=current.plan)


def replace_subscription(*, subscription: CompanySubscription, plan: Plan) -> Replacement:
    """New terms for an open subscription (call inside a transaction holding its row lock).

    The Account API cannot update a recurring bill (docs/protocol.md, 'Recurring bills'),
    so a subscription that may be on the platform is cancelled and replaced by a new
    one, whose first charge is the old bill's next one (never before the free
    trial ends), so nothing is charged twice for a cycle. One never sent is changed
    in place.
    """
    company = subscription.company
    terms = _terms(company=company, plan=plan)
    start = billing_start_date(company=company, plan=plan)
    if not (subscription.platform_id or subscription.attempts):
        for name, value in terms.items():
            setattr(subscription, name, value)
        subscription.start_date = start
        subscription.save()
        logger.info("Pending subscription re-priced", extra=_context(company, plan=plan.name))
        return Replacement(current=subscription, replaced=None)
    subscription.status = CompanySubscription.Status.CANCELLED
    subscription.cancelled_at = timezone.now()
    subscription.platform_cancel_pending = True
    subscription.save(
        update_fields=["status", "cancelled_at", "platform_cancel_pending", "updated_at"]
    )
    start = max(start, next_charge_date(subscription=subscription))
    replacement = CompanySubscription.objects.create(
        company=company, start_date=start, replaces=subscription, **terms
    )
    logger.info(
        "Subscription replaced",
        extra=_context(
            company,
            subscription=replacement.pk,
            replaces=subscription.pk,
            plan=plan.name,
            units=replacement.units,
        ),
    )
    return Replacement(current=replacement, replaced=subscription)


def change_start_date(*, company: Company, plan: Plan) -> dt.datetime:
    """When the first charge on ``plan`` would be if ``company`` moved to it now."""
    current = open_subscription(company=company)
    start = billing_start_date(company=company, plan=plan)
    if current is None or not (current.platform_id or current.attempts):
        return start
    return max(start, next_charge_date(subscription=current))


def next_charge_date(
    *, subscription: CompanySubscription, now: dt.datetime | None = None
) -> dt.datetime:
    """The first charge of ``subscription`` still to come: its start date while that is
    ahead, else the start of its next cycle (``add_periods`` of whole cycles from the
    start, the first after ``now``).

    Computed, not stepped through: the cycles elapsed are counted from the time since the
    start (:func:`_cycles_elapsed`), then corrected by a step or two, so a start in year 1
    (the platform's answer is the start, docs/billing.md) costs what last month's does.
    A frequency below 1 (a plan the platform refuses) counts as 1. Never past
    :data:`LATEST_BILLING_MOMENT`: a cycle ending after it (a frequency of a billion days,
    a start in year 9999) counts as ending then, as a trial does, so no page raises.
    """
    now = now or timezone.now()
    start, period = subscription.start_date, subscription.period
    periods_per_cycle = max(subscription.frequency, 1)

    def charge(cycle: int) -> dt.datetime:
        try:
            moment = add_periods(start, period, cycle * periods_per_cycle)
        except OverflowError:
            return LATEST_BILLING_MOMENT
        return min(moment, LATEST_BILLING_MOMENT)

    cycle = max(
        _cycles_elapsed(start=start, now=now, period=period, periods_per_cycle=periods_per_cycle),
        0,
    )
    while cycle > 0 and charge(cycle - 1) > now:
        cycle -= 1
    moment = charge(cycle)
    while moment <= now and moment < LATEST_BILLING_MOMENT:
        cycle += 1
        moment = charge(cycle)
    return moment


def _cycles_elapsed(
    *, start: dt.datetime, now: dt.datetime, period: str, periods_per_cycle: int
) -> int:
    """How many whole cycles fit between ``start`` and ``now``: exact for days and weeks,
    within two for the periods counted in months (their lengths vary)."""
    if period in (BillingPeriod.DAY, BillingPeriod.WEEK):
        days = 7 if period == BillingPeriod.WEEK else 1
        return (now - start).days // (days * periods_per_cycle)  # no timedelta to overflow
    months = (now.year - start.year) * 12 + now.month - start.month
    if period == BillingPeriod.YEAR:
        return months // (12 * periods_per_cycle)
    if period == BillingPeriod.SEMI_MONTH:
        return 2 * months // periods_per_cycle
    return months // periods_per_cycle


def add_periods(start: dt.datetime, period: str, count: int) -> dt.datetime:
    """``start`` plus ``count`` billing periods; a month keeps its day (the 31st becomes the
    month's last day), a semi-month is half a month (15 days after the month steps).
    Raises ``OverflowError`` past year 9999, whatever the period."""
    if period == BillingPeriod.DAY:
        return start + dt.timedelta(days=count)
    if period == BillingPeriod.WEEK:
        return start + dt.timedelta(days=7 * count)
    if period == BillingPeriod.SEMI_MONTH:
        whole, half = divmod(count, 2)
        return add_periods(start, BillingPeriod.MONTH, whole) + dt.timedelta(days=15 * half)
    months = start.month - 1 + count * (12 if period == BillingPeriod.YEAR else 1)
    year, month = start.year + months // 12, months % 12 + 1
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise OverflowError(f"year {year} is out of range")
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def submit_subscription(*, subscription: CompanySubscription) -> CompanySubscription:
    """Create the subscription's recurring bill on the platform, at most once."""
    subscription.refresh_from_db()
    if subscription.platform_id or subscription.status == CompanySubscription.Status.CANCELLED:
        return subscription
    company = subscription.company

    def create(client: AccountClient) -> RecurringBill:
        start_date = subscription.start_date
        send_start = start_date if start_date > timezone.now() + _START_NOW_MARGIN else None
        return client.create_recurring_bill(
            group_id=company.group_uid,
            price_cents=subscription.price_cents,
            description=f"{subscription.plan.name} subscription {subscription.marker}",
            period=subscription.period,
            frequency=subscription.frequency,
            start_date=send_start,
            currency=subscription.currency,
        )

    remote = _send_at_most_once(
        subscription,
        what="Subscription",
        bill="recurring bill",
        earlier=lambda client: client.list_recurring_bills(group_id=company.group_uid),
        create=create,
    )
    if remote is None:
        return subscription
    values: dict[str, Any] = {
        "platform_id": remote.id,
        "last_error": "",
        "sending_until": None,
    }
    if remote.start_date is not None:
        values["start_date"] = remote.start_date
    with transaction.atomic():
        current = CompanySubscription.objects.select_for_update().get(pk=subscription.pk)
        if current.status == CompanySubscription.Status.CANCELLED:
            # The group was cancelled while the create was in flight: cancel it too.
            values["platform_cancel_pending"] = True
        else:
            values["status"] = _subscription_status(remote.status)
        CompanySubscription.objects.filter(pk=subscription.pk).update(
            **values, updated_at=timezone.now()
        )
    subscription.refresh_from_db()
    if subscription.platform_cancel_pending:
        cancel_subscription_on_platform(subscription=subscription)
    return subscription


def cancel_company_billing(*, company: Company) -> list[CompanySubscription]:
    """Mark the company's open subscriptions cancelled (local only; call inside the webhook's
    transaction). The platform side is done by :func:`cancel_subscription_on_platform`,
    from a task, so a platform failure never loses the cancellation.
    """
    now = timezone.now()
    cancelled = []
    for subscription in CompanySubscription.objects.select_for_update().filter(
        company=company, status__in=OPEN_SUBSCRIPTION_STATUSES
    ):
        subscription.status = CompanySubscription.Status.CANCELLED
        subscription.cancelled_at = now
        # Possibly on the platform: a create may have been applied without us knowing.
        subscription.platform_cancel_pending = bool(
            subscription.platform_id or subscription.attempts
        )
        subscription.save(
            update_fields=["status", "cancelled_at", "platform_cancel_pending", "updated_at"]
        )
        cancelled.append(subscription)
    if cancelled:
        logger.info(
            "Subscriptions cancelled",
            extra={**_context(company), "subscriptions": [s.pk for s in cancelled]},
        )
    return cancelled


def cancel_subscription_on_platform(*, subscription: CompanySubscription) -> CompanySubscription:
    """Cancel the recurring bill of a cancelled subscription on the platform (idempotent).

    A subscription whose create may still land (in flight, or unanswered and within
    :func:`answer_grace`) and that is not found by its reference yet stays
    ``platform_cancel_pending``: the sweep looks for it again.
    """
    subscription.refresh_from_db()
    if not subscription.platform_cancel_pending:
        return subscription
    company = subscription.company
    context = _context(company, subscription=subscription.pk)
    try:
        client = _client(company)
        platform_id = subscription.platform_id
        if not platform_id:
            remote = _find_by_marker(
                client.list_recurring_bills(group_id=company.group_uid), subscription.marker
            )
            platform_id = remote.id if remote is not None else ""
        if not platform_id and _create_may_still_land(subscription):
            logger.info(
                "Recurring bill to cancel not on the platform yet; looked for again later",
                extra={**context, "until": subscription.sending_until},
            )
            return subscription
        if platform_id:
            _cancel_recurring_bill(client, platform_id, context=context)
    except (AccountApiError, ImproperlyConfiguredPreset) as error:
        _record_cancel_failure(subscription, error)
        raise
    CompanySubscription.objects.filter(pk=subscription.pk).update(
        platform_id=platform_id,
        platform_cancel_pending=False,
        last_error="",
        updated_at=timezone.now(),
    )
    logger.info("Recurring bill cancelled", extra={**context, "platform_id": platform_id})
    subscription.refresh_from_db()
    return subscription


def _cancel_recurring_bill(client: AccountClient, platform_id: str, *, context: dict) -> None:
    """Cancel on the platform; a bill that is already over (cancelled by an earlier
    attempt whose answer was lost, or expired) counts as done."""
    try:
        client.cancel_recurring_bill(platform_id)
    except AccountNotFoundError:
        logger.warning("Recurring bill to cancel not found on the platform", extra=context)
    except AccountValidationError:
        remote = client.retrieve_recurring_bill(platform_id)
        if remote.status not in ("cancelled", "expired"):
            raise
        logger.info(
            "Recurring bill was already %s", remote.status, extra={**context, "id": platform_id}
        )


# --- status from the platform ------------------------------------------------------------

#: Local statuses the platform may still change (a recurring bill starts, ends or is
#: cancelled there; a bill is invoiced or cancelled).
REFRESHED_SUBSCRIPTION_STATUSES = (
    CompanySubscription.Status.SUBMITTED,
    CompanySubscription.Status.ACTIVE,
)
REFRESHED_CHARGE_STATUSES = (AdHocCharge.Status.SUBMITTED,)


def companies_to_refresh() -> list[int]:
    """Companies with a recurring bill or a bill on the platform whose status may change."""
    subscriptions = CompanySubscription.objects.filter(
        status__in=REFRESHED_SUBSCRIPTION_STATUSES, platform_cancel_pending=False
    ).exclude(platform_id="")
    charges = AdHocCharge.objects.filter(status__in=REFRESHED_CHARGE_STATUSES).exclude(
        platform_bill_id=""
    )
    ids = set(subscriptions.values_list("company_id", flat=True))
    ids.update(charges.values_list("company_id", flat=True))
    return sorted(ids)


def refresh_billing_status(*, company: Company, now: dt.datetime | None = None) -> int:
    """Read the statuses of the company's recurring bills and bills from the Account API.

    One list call per kind (filtered by group), only when something may still
    change. A recurring bill the platform cancelled or ended cancels (or expires)
    its subscription here; the Admin may then choose a plan again. Returns the
    number of rows whose status changed. Raises :class:`AccountApiError`.
    """
    now = now or timezone.now()
    subscriptions = {
        row.platform_id: row
        for row in CompanySubscription.objects.filter(
            company=company,
            status__in=REFRESHED_SUBSCRIPTION_STATUSES,
            platform_cancel_pending=False,
        ).exclude(platform_id="")
    }
    charges = {
        row.platform_bill_id: row
        for row in AdHocCharge.objects.filter(
            company=company, status__in=REFRESHED_CHARGE_STATUSES
        ).exclude(platform_bill_id="")
    }
    client = _client(company)
    changed = 0
    if subscriptions:
        for remote in client.list_recurring_bills(group_id=company.group_uid):
            local = subscriptions.get(remote.id)
            if local is not None:
                changed += _apply_subscription_status(local, remote.status, now=now)
        CompanySubscription.objects.filter(pk__in=[s.pk for s in subscriptions.values()]).update(
            status_checked_at=now
        )
    if charges:
        for bill in client.list_bills(group_id=company.group_uid):
            charge = charges.get(bill.id)
            status = _charge_status(bill.status)
            if charge is not None and status != charge.status:
                AdHocCharge.objects.filter(pk=charge.pk).update(status=status, updated_at=now)
                changed += 1
        AdHocCharge.objects.filter(pk__in=[c.pk for c in charges.values()]).update(
            status_checked_at=now
        )
    if changed:
        logger.info("Billing statuses refreshed", extra=_context(company, changed=changed))
    return changed


def _apply_subscription_status(
    subscription: CompanySubscription, remote_status: str, *, now: dt.datetime
) -> int:
    status = _subscription_status(remote_status)
    if status == subscription.status:
        return 0
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == CompanySubscription.Status.CANCELLED:
        values["cancelled_at"] = now
    with transaction.atomic():
        # Not if we changed it meanwhile (a plan change cancelled it, for instance).
        updated = CompanySubscription.objects.filter(
            pk=subscription.pk, status=subscription.status, platform_cancel_pending=False
        ).update(**values)
    if updated:
        logger.info(
            "Recurring bill is now %s on the platform",
            status,
            extra=_context(subscription.company, subscription=subscription.pk),
        )
    return updated


# --- ad-hoc bills ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeRequest:
    """A validated, normalised ad-hoc bill."""

    amount_cents: int
    description: str
    idempotency_key: str
    currency: str
    units: Decimal | None
    period_started_at: dt.datetime | None
    period_ended_at: dt.datetime | None
    product: str = ""


def _description_problem(description: Any) -> str | None:
    """Why ``description`` is not a bill's (``None``: it is), stripped: the rule of
    :func:`validate_charge` and of a configured product (:func:`product_errors`)."""
    text = description.strip() if isinstance(description, str) else ""
    if not text:
        return "can't be blank"
    if len(text) > MAX_DESCRIPTION_LENGTH:
        return f"is too long (at most {MAX_DESCRIPTION_LENGTH} characters)"
    if not is_safe_text(text):
        return _UNSTORABLE_TEXT
    return None


def _units_of(units: Any) -> tuple[Decimal | None, str | None]:
    """``units`` of a bill as a ``Decimal`` (``None``: none), or why they are not: the rule
    of :func:`validate_charge` and of a configured product (:func:`product_errors`)."""
    if units is None:
        return None, None
    try:
        quantity = Decimal(str(units))
    except (InvalidOperation, ValueError):
        return None, "must be a number"
    if not quantity.is_finite() or quantity <= 0:
        return None, "must be greater than 0"
    if quantity != quantity.quantize(Decimal("0.01")) or quantity >= Decimal("1e8"):
        return None, "must have at most 8 digits and 2 decimals"
    return quantity, None


def validate_charge(
    *,
    company: Company,
    amount_cents: Any,
    description: Any,
    idempotency_key: Any,
    units: Any = None,
    period_started_at: Any = None,
    period_ended_at: Any = None,
    currency: Any = None,
    product: Any = "",
) -> ChargeRequest:
    """Check an ad-hoc bill against the Account API's rules (docs/protocol.md, 'Bills') locally.

    Raises :class:`InvalidBill` with every problem found, so no HTTP call is
    made for a bill the platform would refuse. ``product`` (what was bought, for the
    project's own receivers: never sent to the platform) is a short text or ``""``.
    """
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        refuse("price_cents", "must be a whole number of cents")
    elif amount_cents < 0:
        refuse("price_cents", "must be greater than or equal to 0")

    text = description.strip() if isinstance(description, str) else ""
    if problem := _description_problem(description):
        refuse("description", problem)

    key = idempotency_key.strip() if isinstance(idempotency_key, str) else ""
    if not key:
        refuse("idempotency_key", "can't be blank")
    elif len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        refuse("idempotency_key", f"is too long (at most {MAX_IDEMPOTENCY_KEY_LENGTH})")
    elif not is_safe_text(key):
        refuse("idempotency_key", _UNSTORABLE_TEXT)

    kind = product.strip() if isinstance(product, str) else None
    if kind is None:
        refuse("product", "must be a text")
    elif len(kind) > MAX_PRODUCT_LENGTH:
        refuse("product", f"is too long (at most {MAX_PRODUCT_LENGTH} characters)")
    elif not is_safe_text(kind):
        refuse("product", _UNSTORABLE_TEXT)

    if currency is None:
        # The group's currency when it is a valid one, else the platform's default.
        code = company.currency if is_iso_4217(company.currency) else ""
    else:
        code = currency.strip().upper() if isinstance(currency, str) else currency
        if not is_iso_4217(code):
            refuse("currency", f"{code!r} is not an ISO 4217 currency code")

    quantity, problem = _units_of(units)
    if problem:
        refuse("units", problem)

    for name, value in (
        ("period_started_at", period_started_at),
        ("period_ended_at", period_ended_at),
    ):
        if value is not None and (not isinstance(value, dt.datetime) or timezone.is_naive(value)):
            refuse(name, "must be a timezone-aware datetime")
    if (
        isinstance(period_started_at, dt.datetime)
        and isinstance(period_ended_at, dt.datetime)
        and not errors.get("period_started_at")
        and not errors.get("period_ended_at")
        and period_ended_at < period_started_at
    ):
        refuse("period_ended_at", "must be after period_started_at")

    if errors:
        raise InvalidBill(errors)
    return ChargeRequest(
        amount_cents=amount_cents,
        description=text,
        idempotency_key=key,
        currency=code,
        units=quantity,
        period_started_at=period_started_at,
        period_ended_at=period_ended_at,
        product=kind or "",
    )


def record_charge(*, company: Company, request: ChargeRequest) -> tuple[AdHocCharge, bool]:
    """The charge of ``request.idempotency_key`` for ``company``, created if new.

    Raises :class:`IdempotencyKeyReused` when the key already names a different
    charge (same key, other amount or description): a caller bug, not a repeat.
    """
    fields = {
        "amount_cents": request.amount_cents,
        "description": request.description,
        "currency": request.currency,
        "units": request.units,
        "period_started_at": request.period_started_at,
        "period_ended_at": request.period_ended_at,
        "product": request.product,
    }
    lookup = {"company": company, "idempotency_key": request.idempotency_key}
    try:
        with transaction.atomic():
            charge, created = AdHocCharge.objects.get_or_create(**lookup, defaults=fields)
    except IntegrityError:
        charge, created = AdHocCharge.objects.get(**lookup), False
    if not created:
        different = [name for name, value in fields.items() if getattr(charge, name) != value]
        if different:
            raise IdempotencyKeyReused(
                {
                    "idempotency_key": [
                        f"was already used for another charge (differs in {', '.join(different)})"
                    ]
                }
            )
    return charge, created


def submit_charge(*, charge: AdHocCharge) -> AdHocCharge:
    """Create the charge's bill on the platform, at most once."""
    charge.refresh_from_db()
    if charge.platform_bill_id:
        return charge
    company = charge.company
    remote = _send_at_most_once(
        charge,
        what="Charge",
        bill="bill",
        earlier=lambda client: client.list_bills(group_id=company.group_uid),
        create=lambda client: client.create_bill(
            group_id=company.group_uid,
            price_cents=charge.amount_cents,
            description=f"{charge.description} {charge.marker}",
            currency=charge.currency or None,
            units=charge.units,
            period_started_at=charge.period_started_at,
            period_ended_at=charge.period_ended_at,
        ),
    )
    if remote is None:
        return charge
    with transaction.atomic():
        # Only the first answer records the bill: a second worker that adopted the same
        # bill meanwhile matches no row (it waited for the first one's commit).
        recorded = AdHocCharge.objects.filter(pk=charge.pk, platform_bill_id="").update(
            platform_bill_id=remote.id,
            status=_charge_status(remote.status),
            last_error="",
            sending_until=None,
            updated_at=timezone.now(),
        )
        charge.refresh_from_db()
        if recorded and charge.status in BILLED_CHARGE_STATUSES:
            # In the same transaction: what the receivers grant commits with the bill's
            # id, or neither does (and the next attempt adopts the bill and grants it).
            # Not for a bill found already cancelled: nothing was bought.
            charge_billed.send(sender=AdHocCharge, charge=charge, company=company)
    return charge


@dataclass(frozen=True)
class ChargeProgress:
    """Where a purchase stands, in the words its page shows (and its JSON carries).

    ``state``: ``pending`` (not on the platform yet: being sent, waiting for an answer,
    or waiting for the platform to come back), ``billed`` (the platform holds the bill),
    ``failed`` (refused: nothing charged) or ``cancelled``; ``final`` once it no longer
    changes by itself (everything but ``pending``).
    """

    state: str
    label: str
    detail: str
    bill_id: str

    @property
    def final(self) -> bool:
        return self.state != "pending"

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "label": self.label,
            "detail": self.detail,
            "bill_id": self.bill_id,
            "final": self.final,
        }


def charge_progress(*, charge: AdHocCharge) -> ChargeProgress:
    """What the purchase page says about ``charge``: its state and what to do next."""
    name = charge.company.name
    if charge.status == AdHocCharge.Status.FAILED:
        # The Account API's answer (``last_error``: a method, a URL, a status) is for the
        # admin site and the logs; it may also be this app's own credentials refused.
        return ChargeProgress(
            state="failed",
            label=charge.status_label,
            detail=gettext(
                "The marketplace did not accept the purchase. Nothing was charged. Buy "
                "again from the billing page; if it fails again, contact this application's "
                "support."
            ),
            bill_id="",
        )
    if charge.status == AdHocCharge.Status.CANCELLED:
        return ChargeProgress(
            state="cancelled",
            label=charge.status_label,
            detail=gettext(
                "The marketplace cancelled this bill: nothing is charged for it. "
                "Buy again from the billing page if you still need it."
            ),
            bill_id=charge.platform_bill_id,
        )
    if charge.is_on_platform:
        invoiced = charge.status == AdHocCharge.Status.INVOICED
        return ChargeProgress(
            state="billed",
            label=charge.status_label,
            detail=(
                gettext("It is on %(company)s's invoice from the marketplace.")
                if invoiced
                else gettext(
                    "The marketplace has the bill: it is charged to %(company)s on its next "
                    "invoice."
                )
            )
            % {"company": name},
            bill_id=charge.platform_bill_id,
        )
    if charge.awaiting_answer:
        detail = gettext(
            "Sent to the marketplace, waiting for its answer; without one, the marketplace "
            "is asked %(when)s. Nothing to do: it is never billed twice, and this page "
            "follows it."
        ) % {"when": _when_asked(charge)}
    elif charge.last_error:
        detail = gettext(
            "The marketplace could not be reached; the purchase is sent again automatically. "
            "Nothing to do: this page follows it."
        )
    else:
        detail = gettext("On its way to the marketplace. Nothing to do: this page follows it.")
    return ChargeProgress(state="pending", label=charge.status_label, detail=detail, bill_id="")


def _when_asked(charge: AdHocCharge) -> str:
    """When an unanswered purchase is looked up on the platform, in words ("in about 10
    minutes"): once its grace period (``sending_until``) has passed, at the next sweep."""
    left = (charge.sending_until - timezone.now()).total_seconds() if charge.sending_until else 0
    minutes = max(1, round(left / 60))
    if left <= 60:
        return gettext("within a minute")
    return ngettext("in about %(minutes)d minute", "in about %(minutes)d minutes", minutes) % {
        "minutes": minutes
    }


def record_final_bill(*, company: Company) -> AdHocCharge | None:
    """The final bill the adapter asks for when ``company`` cancels, recorded (not sent).

    Called inside the cancellation's transaction; the key is tied to this
    cancellation, so a repeated webhook never records a second final bill.
    """
    details = get_adapter().final_bill(company)
    if not details:
        return None
    cancelled_at = company.cancelled_at or timezone.now()
    request = validate_charge(
        company=company,
        amount_cents=details.get("price_cents"),
        description=details.get("description") or "Final bill",
        idempotency_key=f"final-bill:{cancelled_at.isoformat()}",
        units=details.get("units"),
        period_started_at=details.get("period_started_at"),
        period_ended_at=details.get("period_ended_at"),
        currency=details.get("currency"),
    )
    charge, _created = record_charge(company=company, request=request)
    logger.info("Final bill recorded", extra=_context(company, charge=charge.pk))
    return charge


# --- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingBillingWork:
    subscriptions_to_submit: list[int]
    subscriptions_to_cancel: list[int]
    charges_to_submit: list[int]
    #: Cancelled companies whose billing was not cancelled yet (a crash between the
    #: company's cancellation and billing's reaction to it).
    cancelled_companies: list[int]


def pending_billing_work(*, now: dt.datetime | None = None) -> PendingBillingWork:
    """What still has to reach the platform (what the periodic sweep retries)."""
    now = now or timezone.now()
    not_in_flight = Q(sending_until__isnull=True) | Q(sending_until__lt=now)
    submit = CompanySubscription.objects.filter(
        not_in_flight,
        status=CompanySubscription.Status.PENDING,
        platform_id="",
        company__status=Company.Status.ACTIVE,
    )
    cancel = CompanySubscription.objects.filter(platform_cancel_pending=True)
    charges = AdHocCharge.objects.filter(
        not_in_flight, status=AdHocCharge.Status.PENDING, platform_bill_id=""
    )
    cancelled_companies = CompanySubscription.objects.filter(
        status__in=OPEN_SUBSCRIPTION_STATUSES, company__status=Company.Status.CANCELLED
    )
    return PendingBillingWork(
        subscriptions_to_submit=list(submit.values_list("pk", flat=True)),
        subscriptions_to_cancel=list(cancel.values_list("pk", flat=True)),
        charges_to_submit=list(charges.values_list("pk", flat=True)),
        cancelled_companies=sorted(set(cancelled_companies.values_list("company_id", flat=True))),
    )


# --- helpers -------------------------------------------------------------------------------


def _client(company: Company) -> AccountClient:
    return AccountClient(preset=company.preset)


#: What a charge's text that no database stores is refused with.
_UNSTORABLE_TEXT = "contains characters no database stores (NUL, lone surrogates)"


def _context(company: Company, **ids: Any) -> dict[str, Any]:
    return {"preset": company.preset, "group": company.group_uid, "company": company.pk, **ids}


def answer_grace() -> dt.timedelta:
    """How long a sent create's outcome counts as unknown: the lease taken before sending,
    and renewed when the create got no answer (``MAESTRANO["BILLING"]["ANSWER_GRACE_SECONDS"]``,
    never less than two HTTP timeouts and 5 s). The record is not sent again before it
    ends; then the platform is first searched for its reference."""
    floor = float(maestrano_settings.HTTP_TIMEOUT) * 2 + 5
    return dt.timedelta(seconds=max(float(billing_settings().answer_grace_seconds), floor))


def seconds_until_resend(
    *, record: CompanySubscription | AdHocCharge, now: dt.datetime | None = None
) -> float:
    """Seconds before ``record`` may be sent again (0 when it may be now)."""
    record.refresh_from_db(fields=["sending_until"])
    if record.sending_until is None:
        return 0.0
    return max(0.0, (record.sending_until - (now or timezone.now())).total_seconds())


def _claim_attempt(record: CompanySubscription | AdHocCharge) -> bool:
    """Count an attempt and take the lease, committed before any HTTP call.

    The update matches the attempt count we read, so of two workers only one
    sends; and because it is committed first, a crash mid-call still leaves
    ``attempts > 0``, which makes the next submission look on the platform first.
    """
    now = timezone.now()
    model: type[models.Model] = type(record)
    claimed = (
        model.objects.filter(pk=record.pk, attempts=record.attempts)  # type: ignore[attr-defined]
        .filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now))
        .update(
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            sending_until=now + answer_grace(),
            updated_at=now,
        )
    )
    return claimed == 1


def _answer_lost(error: Exception) -> bool:
    """The create got no answer of the platform's although it may have reached it (no
    answer at all, or a gateway's 502 or 504)."""
    return isinstance(error, AccountApiError) and error.outcome_unknown


def _create_may_still_land(subscription: CompanySubscription) -> bool:
    """A create of ``subscription`` is in flight or unanswered within the grace period."""
    return subscription.sending_until is not None and subscription.sending_until > timezone.now()


def _record_send_failure(
    record: CompanySubscription | AdHocCharge, error: Exception, *, sent: bool
) -> None:
    """Keep the error of a submission; a refusal (not transient) marks the record ``failed``.

    The lease: renewed for :func:`answer_grace` when the create got no answer (``sent``
    and :func:`_answer_lost`), released after an answered failure, and left as the
    earlier attempt had it when this one failed before sending (a failed lookup).
    The status changes only if nobody changed it while the call was in flight (a plan
    change or a cancellation may have cancelled the subscription meanwhile).
    """
    transient = isinstance(error, AccountApiError) and error.is_transient
    now = timezone.now()
    model: type[models.Model] = type(record)
    answer_lost = sent and _answer_lost(error)
    if answer_lost:
        sending_until = now + answer_grace()
    elif sent:
        sending_until = None
    else:
        sending_until = record.sending_until  # as read before this attempt's claim
    values = {
        "last_error": str(error)[:_MAX_ERROR_LENGTH],
        "sending_until": sending_until,
        "updated_at": now,
    }
    with transaction.atomic():
        model.objects.filter(pk=record.pk).update(**values)  # type: ignore[attr-defined]
        model.objects.filter(pk=record.pk, status=record.status).update(  # type: ignore[attr-defined]
            status=record.Status.PENDING if transient else record.Status.FAILED
        )
    outcome = "no answer" if answer_lost else "will retry" if transient else "refused"
    _log_failure(record, error, outcome=outcome)


def _record_cancel_failure(subscription: CompanySubscription, error: Exception) -> None:
    """Keep the error of a cancellation; the rest (status, lease) is the submission's."""
    CompanySubscription.objects.filter(pk=subscription.pk).update(
        last_error=str(error)[:_MAX_ERROR_LENGTH], updated_at=timezone.now()
    )
    transient = isinstance(error, AccountApiError) and error.is_transient
    _log_failure(subscription, error, outcome="will retry" if transient else "refused")


def _log_failure(
    record: CompanySubscription | AdHocCharge, error: Exception, *, outcome: str
) -> None:
    logger.warning(
        "Billing call failed (%s)",
        outcome,
        extra={
            "preset": record.company.preset,
            "group": record.company.group_uid,
            "record": f"{type(record).__name__}:{record.pk}",
            "status": getattr(error, "status", None),
        },
    )


_Sent = TypeVar("_Sent", Bill, RecurringBill)


def _send_at_most_once(
    record: CompanySubscription | AdHocCharge,
    *,
    what: str,
    bill: str,
    earlier: Callable[[AccountClient], list[_Sent]],
    create: Callable[[AccountClient], _Sent],
) -> _Sent | None:
    """The platform's bill for ``record``, sent at most once: the rule that
    :func:`submit_subscription` and :func:`submit_charge` share.

    The attempt is claimed first (:func:`_claim_attempt`); ``None`` (and ``record``
    read again) when another worker holds it. After an earlier attempt, whose create may
    have reached the platform unanswered, the bill is first looked for by the record's
    marker among ``earlier(client)``'s and adopted when found; only then is ``create``
    called. A failure is kept on the record (:func:`_record_send_failure`) and raised.
    ``what`` and ``bill`` name the record and the bill in the log lines.
    """
    context = _context(record.company, **{what.lower(): record.pk})
    previous_attempts = record.attempts
    if not _claim_attempt(record):
        logger.info("%s being submitted or awaiting an answer", what, extra=context)
        record.refresh_from_db()
        return None
    sent = False
    try:
        client = _client(record.company)
        remote: _Sent | None = None
        if previous_attempts:
            remote = _find_by_marker(earlier(client), record.marker)
            if remote is not None:
                logger.info(
                    "Adopted the %s of an earlier attempt",
                    bill,
                    extra={**context, "platform_id": remote.id},
                )
        if remote is None:
            sent = True
            remote = create(client)
            logger.info(
                "%s created",
                bill[0].upper() + bill[1:],
                extra={**context, "platform_id": remote.id},
            )
    except (AccountApiError, ImproperlyConfiguredPreset) as error:
        _record_send_failure(record, error, sent=sent)
        raise
    return remote


def _find_by_marker(
    remote_bills: list[Any], marker: str
) -> Any:  # Bill | RecurringBill | None, matching the list given
    matches = [bill for bill in remote_bills if marker in bill.description]
    if len(matches) > 1:
        logger.error(
            "Several platform bills carry one reference; adopting the oldest",
            extra={"marker": marker, "platform_ids": [bill.id for bill in matches]},
        )
        matches.sort(key=lambda bill: (bill.created_at is None, bill.created_at, bill.id))
    return matches[0] if matches else None


def _subscription_status(remote_status: str) -> str:
    if remote_status in CompanySubscription.Status.values:
        return remote_status
    return CompanySubscription.Status.SUBMITTED


def _charge_status(remote_status: str) -> str:
    if remote_status in AdHocCharge.Status.values:
        return remote_status
    return AdHocCharge.Status.SUBMITTED


__all__ = [
    "DEFAULT_PLAN_KEYS",
    "PRODUCT_KEYS",
    "BillingError",
    "BillingPeriod",
    "ChargeProgress",
    "ChargeRequest",
    "IdempotencyKeyReused",
    "InvalidBill",
    "InvalidDefaultPlan",
    "PendingBillingWork",
    "Product",
    "answer_grace",
    "billing_start_date",
    "cancel_company_billing",
    "cancel_subscription_on_platform",
    "change_plan",
    "charge_progress",
    "companies_to_refresh",
    "default_plan_errors",
    "default_plan_unknown_keys",
    "effective_trial_days",
    "get_default_plan",
    "initial_plan",
    "next_charge_date",
    "offered_plans",
    "offered_product",
    "offered_products",
    "open_subscription",
    "pending_billing_work",
    "plan_trial_end",
    "product_errors",
    "record_charge",
    "record_final_bill",
    "refresh_billing_status",
    "replace_subscription",
    "seconds_until_resend",
    "set_up_billing",
    "start_subscription",
    "submit_charge",
    "submit_subscription",
    "update_headcount",
]
