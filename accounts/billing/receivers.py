"""Signal receivers that start billing: a new company, or a cancelled one coming back.

They only record the pending subscription and queue a task: the platform is
never called from the login, and nothing here may fail a login.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from accounts.signals import company_created, company_reactivated

from . import tasks

logger = logging.getLogger(__name__)


@receiver(company_created, dispatch_uid="accounts.billing.set_up_on_company_created")
@receiver(company_reactivated, dispatch_uid="accounts.billing.set_up_on_company_reactivated")
def start_billing(sender: Any, *, company: Any, **kwargs: Any) -> None:
    """Record the company's subscription (pending) and queue its set-up on the platform.

    The pending row is written first so that a broker outage loses nothing:
    :func:`accounts.billing.tasks.retry_pending_billing_task` finds it later.
    """
    from . import services

    try:
        if not services.billing_enabled():
            return
        services.start_subscription(company=company)
    except Exception:
        logger.exception(
            "Could not record the subscription of a new company",
            extra={"preset": company.preset, "group": company.group_uid},
        )
    tasks.enqueue_on_commit(tasks.set_up_billing_task, company.pk)
