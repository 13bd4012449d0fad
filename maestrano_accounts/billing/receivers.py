"""Billing's reactions to the account signals (:mod:`maestrano_accounts.signals`).

Connected by :meth:`maestrano_accounts.apps.AccountsConfig.ready` through :func:`connect`. They
record what changed and queue (or do, after commit) the platform calls; nothing
here may fail a login or a webhook, so every receiver logs its errors instead of
raising them.
"""

from __future__ import annotations

import logging
from typing import Any

from maestrano_accounts.signals import (
    company_cancelled,
    company_created,
    company_reactivated,
    member_added,
    member_removed,
)

from . import actions, tasks

logger = logging.getLogger(__name__)


def start_billing(sender: Any, *, company: Any, attributes: Any = None, **kwargs: Any) -> None:
    """A new company, or a cancelled one back: its subscription on the chosen plan."""
    actions.start_billing(company=company, attributes=attributes)


def update_headcount(sender: Any, *, company: Any, **kwargs: Any) -> None:
    """Members came or went: a per-user subscription is re-priced (in a task)."""
    tasks.enqueue_on_commit(tasks.update_headcount_task, company.pk)


def cancel_billing(sender: Any, *, company: Any, **kwargs: Any) -> None:
    """The company cancelled the service: its recurring bill is cancelled and the final
    bill sent, now, while the platform's webhook is still open (the group is still
    attached, so the final bill is accepted). What fails is retried later."""
    try:
        tasks.settle_cancellation(company=company)
    except Exception:
        logger.exception(
            "Billing of a cancelled company not settled; the sweep retries it",
            extra={"preset": company.preset, "group": company.group_uid},
        )


def connect() -> None:
    """Connect the receivers (idempotent: each has a ``dispatch_uid``)."""
    company_created.connect(start_billing, dispatch_uid="maestrano.billing.start.created")
    company_reactivated.connect(start_billing, dispatch_uid="maestrano.billing.start.reactivated")
    member_added.connect(update_headcount, dispatch_uid="maestrano.billing.headcount.added")
    member_removed.connect(update_headcount, dispatch_uid="maestrano.billing.headcount.removed")
    company_cancelled.connect(cancel_billing, dispatch_uid="maestrano.billing.cancel")
