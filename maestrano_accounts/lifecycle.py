"""Account lifecycle driven by the platform's webhooks (docs/protocol.md, 'Account webhooks').

A group DELETE cancels the company (and its users' access in virtual mode); a
group-user DELETE removes one member. Nothing is deleted: the rows stay for
export and for a later SSO login, which reactivates the company. Each function
is idempotent: a repeated webhook changes nothing and sends no signal.

These are the rules of accounts; billing (and the adopter) react to the
``company_cancelled`` and ``member_removed`` signals sent after commit, while the
webhook is still open (so a final bill is still accepted by the platform).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.utils import timezone

from maestrano_integration.conf import Preset

from .models import Company, Membership, PlatformRemoval
from .signals import company_cancelled, member_removed

logger = logging.getLogger(__name__)


def _user_can_be_blocked() -> bool:
    """Whether the user model stores ``is_active`` (a field, not AbstractBaseUser's constant).

    Without the field a user cannot be blocked: their memberships alone keep them out
    (``MaestranoSessionMiddleware`` logs out a user without an active membership).
    """
    try:
        field = get_user_model()._meta.get_field("is_active")
    except FieldDoesNotExist:
        return False
    return field.concrete


class UnknownGroup(LookupError):
    """No company of this preset has the group id."""


class UnknownGroupUser(LookupError):
    """The user is unknown, or not a member of the group's company."""


@dataclass(frozen=True)
class LifecycleOutcome:
    company: Company
    changed: bool


#: How long a removal that found nothing to cancel is kept (:func:`remember_removal`): far
#: longer than a login ticket lives, even reissued for a confirmation.
REMOVAL_KEPT_FOR = dt.timedelta(hours=1)


def remember_removal(*, preset: Preset, group_uid: str, uid: str = "") -> None:
    """Keep a removal of a group (``uid`` empty) or of a member (its local uid) that found
    nothing to cancel: a login accepted before it does not create that company or
    membership afterwards (:func:`maestrano_accounts.services.provision_sso_login`). The
    removals older than :data:`REMOVAL_KEPT_FOR` are forgotten."""
    now = timezone.now()
    PlatformRemoval.objects.filter(removed_at__lt=now - REMOVAL_KEPT_FOR).delete()
    PlatformRemoval.objects.create(preset=preset.name, group_uid=group_uid, uid=uid, removed_at=now)


def cancel_company_from_platform(*, preset: Preset, group_uid: str) -> LifecycleOutcome:
    """The group cancelled the service: cancel the company and, in virtual mode, its users.

    ``company_cancelled`` is sent after commit, once: billing cancels the recurring
    bill and sends the final bill from its receiver. An unknown group
    (:class:`UnknownGroup`) is remembered (:func:`remember_removal`).
    """
    try:
        return _cancel_company(preset=preset, group_uid=group_uid)
    except UnknownGroup:
        remember_removal(preset=preset, group_uid=group_uid)
        raise


def _cancel_company(*, preset: Preset, group_uid: str) -> LifecycleOutcome:
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
        deactivated = 0
        if preset.creation_mode == "virtual" and _user_can_be_blocked():
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
        transaction.on_commit(
            lambda: company_cancelled.send(sender=Company, company=company, preset=preset)
        )

    logger.info(
        "Company cancelled by the platform",
        extra={**context, "company": company.pk, "users_deactivated": deactivated},
    )
    return LifecycleOutcome(company=company, changed=True)


def remove_user_from_company(*, preset: Preset, group_uid: str, user_uid: str) -> LifecycleOutcome:
    """A member was removed from the group (docs/protocol.md, 'Account webhooks').

    Real mode: the membership is deactivated, and the user too when no active
    membership is left. Virtual mode: the masked user (``uid.group_uid``) only
    exists for this group, so the user and the membership are deactivated. An unknown
    group or member (:class:`UnknownGroup`, :class:`UnknownGroupUser`) is remembered
    (:func:`remember_removal`).
    """
    local_uid = preset.mask_user(user_uid=user_uid, group_uid=group_uid)
    try:
        return _remove_user(
            preset=preset, group_uid=group_uid, user_uid=user_uid, local_uid=local_uid
        )
    except (UnknownGroup, UnknownGroupUser):
        remember_removal(preset=preset, group_uid=group_uid, uid=local_uid)
        raise


def _remove_user(
    *, preset: Preset, group_uid: str, user_uid: str, local_uid: str
) -> LifecycleOutcome:
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
        if block_user and user.is_active and _user_can_be_blocked():
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
