"""Account lifecycle driven by the platform's webhooks (docs/protocol.md, 'Account webhooks').

A group DELETE cancels the company (its subscription, its users' access); a
group-user DELETE removes one member. Nothing is deleted: the rows stay for
export and for a later SSO login, which reactivates the company. Each function
is idempotent: a repeated webhook changes nothing and queues nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import AdHocCharge, Company, CompanySubscription, Membership
from accounts.signals import company_cancelled, member_removed
from maestrano_integration.conf import Preset

from . import services, tasks

logger = logging.getLogger(__name__)


class UnknownGroup(LookupError):
    """No company of this preset has the group id."""


class UnknownGroupUser(LookupError):
    """The user is unknown, or not a member of the group's company."""


@dataclass(frozen=True)
class LifecycleOutcome:
    company: Company
    changed: bool


def cancel_company_from_platform(*, preset: Preset, group_uid: str) -> LifecycleOutcome:
    """The group cancelled the service: cancel the company, its billing and, in virtual
    mode, its users. Platform calls (recurring bill cancel, final bill) are queued
    after commit, so a platform failure delays them but never loses them.
    """
    context = {"preset": preset.name, "group": group_uid}
    with transaction.atomic():
        company = (
            Company.objects.select_for_update()
            .filter(preset=preset.name, group_uid=group_uid)
            .first()
        )
        if company is None:
            raise UnknownGroup(group_uid)
        if company.status == Company.Status.CANCELLED:
            logger.info("Group DELETE repeated: company already cancelled", extra=context)
            return LifecycleOutcome(company=company, changed=False)

        company.status = Company.Status.CANCELLED
        company.cancelled_at = timezone.now()
        company.save(update_fields=["status", "cancelled_at", "updated_at"])
        subscriptions = services.cancel_company_billing(company=company)
        final_charge = _record_final_bill(company)
        deactivated = 0
        if preset.creation_mode == "virtual":
            # Virtual users exist for this group only: block them, keep their rows.
            deactivated = (
                get_user_model()
                ._default_manager.filter(
                    maestrano_identities__preset=preset.name,
                    maestrano_memberships__company=company,
                    is_active=True,
                )
                .distinct()
                .update(is_active=False)
            )

        to_cancel = [s.pk for s in subscriptions if s.platform_cancel_pending]
        charge_id = final_charge.pk if final_charge is not None else None
        transaction.on_commit(
            lambda: settle_cancellation_on_platform(
                subscription_ids=to_cancel, final_charge_id=charge_id
            )
        )
        transaction.on_commit(
            lambda: company_cancelled.send(sender=Company, company=company, preset=preset)
        )

    logger.info(
        "Company cancelled by the platform",
        extra={
            **context,
            "company": company.pk,
            "subscriptions": [subscription.pk for subscription in subscriptions],
            "final_charge": final_charge.pk if final_charge is not None else None,
            "users_deactivated": deactivated,
        },
    )
    return LifecycleOutcome(company=company, changed=True)


def settle_cancellation_on_platform(
    *, subscription_ids: list[int], final_charge_id: int | None
) -> None:
    """Cancel the recurring bills and send the final bill now, while the webhook is open.

    The platform keeps the group attached to the app until the webhook is
    answered (so a final bill is still accepted), hence inline rather than in a
    worker. Any failure leaves the work pending in the database and queues a
    retry: the cancellation is never lost, only delayed.
    """
    for subscription in CompanySubscription.objects.filter(pk__in=subscription_ids):
        try:
            services.cancel_subscription_on_platform(subscription=subscription)
        except tasks.PLATFORM_ERRORS:
            tasks.enqueue_retry(tasks.cancel_subscription_task, subscription.pk)
    charge = AdHocCharge.objects.filter(pk=final_charge_id).first() if final_charge_id else None
    if charge is not None:
        try:
            services.submit_charge(charge=charge)
        except tasks.PLATFORM_ERRORS as error:
            if getattr(error, "is_transient", False):
                tasks.enqueue_retry(tasks.submit_charge_task, charge.pk)


def _record_final_bill(company: Company):  # -> AdHocCharge | None
    """The adapter's final bill, if any; a bad one is logged, never fails the cancellation."""
    try:
        with transaction.atomic():
            return services.record_final_bill(company=company)
    except services.InvalidBill as error:
        logger.error(
            "Final bill from the adapter refused: %s",
            error,
            extra={"preset": company.preset, "group": company.group_uid},
        )
        return None


def remove_user_from_company(*, preset: Preset, group_uid: str, user_uid: str) -> LifecycleOutcome:
    """A member was removed from the group (docs/protocol.md, 'Account webhooks').

    Real mode: the membership is deactivated, and the user too when no active
    membership is left. Virtual mode: the masked user (``uid.group_uid``) only
    exists for this group, so the user and the membership are deactivated.
    """
    local_uid = preset.mask_user(user_uid=user_uid, group_uid=group_uid)
    context = {"preset": preset.name, "group": group_uid, "uid": local_uid}
    with transaction.atomic():
        company = Company.objects.filter(preset=preset.name, group_uid=group_uid).first()
        if company is None:
            raise UnknownGroup(group_uid)
        user = (
            get_user_model()
            ._default_manager.select_for_update()
            .filter(maestrano_identities__preset=preset.name, maestrano_identities__uid=local_uid)
            .first()
        )
        membership = (
            Membership.objects.select_for_update().filter(user=user, company=company).first()
            if user is not None
            else None
        )
        if user is None or membership is None:
            raise UnknownGroupUser(user_uid)

        changed = False
        if membership.is_active:
            membership.is_active = False
            membership.save(update_fields=["is_active", "updated_at"])
            changed = True
        if preset.creation_mode == "virtual":
            block_user = True
        else:
            block_user = not Membership.objects.filter(user=user, is_active=True).exists()
        if block_user and user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
            changed = True
        if changed:
            transaction.on_commit(
                lambda: member_removed.send(
                    sender=Company,
                    company=company,
                    user=user,
                    membership=membership,
                    preset=preset,
                )
            )

    logger.info(
        "Member removed by the platform" if changed else "Group-user DELETE repeated",
        extra={**context, "company": company.pk, "user": user.pk, "user_blocked": block_user},
    )
    return LifecycleOutcome(company=company, changed=changed)
