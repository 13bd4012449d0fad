"""``MAESTRANO["BILLING"]``: billing's own settings, their defaults and typed access.

The defaults are the fields of :class:`BillingSettings` (one place; docs/settings.md
lists them). Read them with :func:`billing_settings` (``billing_settings().enabled`` ...):
the project's values over the defaults (``DEFAULT_PLAN`` merged key by key), cached until
``settings.MAESTRANO`` changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maestrano_integration.conf import maestrano_settings, register_section, section_defaults

#: Where a new subscription's free trial comes from: the group's own free trial end, the
#: plan's trial days, or whichever ends later.
FREE_TRIAL_SOURCES = ("group", "plan", "latest")


def _standard_plan() -> dict[str, Any]:
    return {
        "name": "Standard",
        "price_cents": 2900,
        "period": "Month",
        "currency": "USD",
        "free_trial_days": 14,
        "frequency": 1,
    }


@dataclass(frozen=True)
class BillingSettings:
    """Every key of ``MAESTRANO["BILLING"]`` (lower case here), with its default."""

    #: Master switch: no subscription, bill or recurring bill is sent when off.
    enabled: bool = True
    #: One of :data:`FREE_TRIAL_SOURCES`.
    free_trial_source: str = "latest"
    #: The plan a company gets when the adapter chooses none (created on first use).
    default_plan: dict[str, Any] = field(default_factory=_standard_plan)
    #: Celery retries of a billing call that failed transiently (network, 429, 5xx):
    #: countdown = task_retry_backoff * 2**attempt, capped, jittered.
    task_max_retries: int = 8
    task_retry_backoff: int = 30
    task_retry_backoff_max: int = 3600
    #: Seconds a bill or recurring bill whose create got no answer (a timeout, a connection
    #: dropped after sending) is left alone: it is not sent again before, and then it is
    #: first looked up on the platform by its reference. Longer than ``HTTP_TIMEOUT`` plus
    #: the platform's slowest write (never less than ``2 * HTTP_TIMEOUT + 5``).
    answer_grace_seconds: float = 600.0
    #: What the company's Admins may buy on the billing page (``buy/<key>/``): ``{key (a
    #: slug): {"description": ..., "amount_cents": ..., "units": ...}}``, checked by
    #: ``maestrano.E040`` (services.offered_products). None by default: nothing to buy.
    products: dict[str, Any] = field(default_factory=dict)


#: ``{KEY: default}`` of ``MAESTRANO["BILLING"]``.
BILLING_DEFAULTS = section_defaults(BillingSettings)

register_section("BILLING", BILLING_DEFAULTS)


def billing_settings() -> BillingSettings:
    """``MAESTRANO["BILLING"]``, typed (cached until ``settings.MAESTRANO`` changes)."""
    return maestrano_settings.typed("BILLING", BillingSettings)
