"""Account lifecycle driven by the platform's webhooks (docs/protocol.md, 'Account webhooks').

A group DELETE cancels the company (and its users' access in virtual mode); a
group-user DELETE removes one member. Nothing is deleted: the rows stay for
export and for a later SSO login, which reactivates the company; they keep the time of
the removal (``removed_at``) even then. Each function
is idempotent: a repeated webhook sends no signal and changes nothing but the time of the
removal, which it moves to its own (:func:`_refresh_removal`): the platform still wants the
access gone, so a login that counts from before the repeat does not bring it back.

These are the rules of accounts; billing (and the adopter) react to the
``company_cancelled`` and ``member_removed`` signals sent after commit, while the
webhook is still open (so a final bill is still accepted by the platform).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router, transaction
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


def lock_group(*, preset: Preset, group_uid: str, shared: bool = False) -> None:
    """Inside a transaction, on PostgreSQL: wait for the group's lock, held until the
    transaction ends. The platform's removals (:func:`cancel_company_from_platform`,
    :func:`remove_user_from_company`) take it alone; the logins that create or change rows of
    the group (:func:`maestrano_accounts.services.provision_sso_login`) take it ``shared``,
    with each other. So a removal and a login run one after the other: the removal then
    cancels the company or membership the login created, or the login sees the removal
    the webhook kept (:func:`remember_removal`) or made. Without it both could commit, the
    removal finding nothing yet and the login no removal yet (or a login writing back the
    company it read before the removal cancelled it).

    A transaction-level advisory lock keyed by the preset and the group (a row lock cannot
    wait for a company that does not exist yet): one statement, and nothing to release.
    Elsewhere nothing: SQLite runs one writing transaction at a time (``IMMEDIATE`` in the
    example settings; in its default mode the later one fails instead of committing).
    """
    connection = connections[router.db_for_write(Company)]
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(
        f"{preset.name}\0{group_uid}".encode(), digest_size=8, person=b"maestrano-group"
    ).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(%s::bigint)",
            [int.from_bytes(digest, "big", signed=True)],
        )


#: How long a removal that found nothing to cancel is kept (:func:`remember_removal`): far
#: longer than a login ticket lives, even reissued for a confirmation, and than the
#: assertions an IdP issues are valid (minutes): a login counts from its assertion's issue.
REMOVAL_KEPT_FOR = dt.timedelta(hours=1)


def remember_removal(*, preset: Preset, group_uid: str, uid: str = "") -> None:
    """Keep a removal of a group (``uid`` empty) or of a member (its local uid) that found
    nothing to cancel: a login that counts from before it does not create that company or
    membership afterwards, and a login counting from after it creates them with its time
    (:func:`maestrano_accounts.services.provision_sso_login`). A repeated removal moves the
    kept one's time to its own (one row per group or member). The removals older than
    :data:`REMOVAL_KEPT_FOR` are forgotten. Called under the group's lock
    (:func:`lock_group`), so two removals of the same group or member do not both insert."""
    now = timezone.now()
    PlatformRemoval.objects.filter(removed_at__lt=now - REMOVAL_KEPT_FOR).delete()
    kept = PlatformRemoval.objects.filter(preset=preset.name, group_uid=group_uid, uid=uid)
    if not kept.update(removed_at=now):
        PlatformRemoval.objects.create(
            preset=preset.name, group_uid=group_uid, uid=uid, removed_at=now
        )


def _refresh_removal(removed: Company | Membership) -> None:
    """A repeated DELETE of a company already cancelled, or of a membership already
    inactive: the time of the platform's removal becomes now, nothing else changes (not
    ``updated_at``, nor ``cancelled_at``; no signal). A login that counts from between the
    first DELETE and this one is then refused
    (:class:`maestrano_accounts.services.RemovedDuringLogin`): the platform, repeating it,
    still wants that access gone."""
    removed.removed_at = timezone.now()
    removed.save(update_fields=["removed_at"])


def cancel_company_from_platform(*, preset: Preset, group_uid: str) -> LifecycleOutcome:
    """The group cancelled the service: cancel the company and, in virtual mode, its users.

    ``company_cancelled`` is sent after commit, once: billing cancels the recurring
    bill and sends the final bill from its receiver. An unknown group
    (:class:`UnknownGroup`) is remembered (:func:`remember_removal`). Under the group's lock
    (:func:`lock_group`).
    """
    with transaction.atomic():
        lock_group(preset=preset, group_uid=group_uid)
        try:
            return _cancel_company(preset=preset, group_uid=group_uid)
        except UnknownGroup:
            remember_removal(preset=preset, group_uid=group_uid)
    raise UnknownGroup(group_uid)


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
            _refresh_removal(company)
            logger.info("Group DELETE repeated: company already cancelled", extra=context)
            return LifecycleOutcome(company=company, changed=False)

        company.status = Company.Status.CANCELLED
        company.cancelled_at = company.removed_at = timezone.now()
        company.save(update_fields=["status", "cancelled_at", "removed_at", "updated_at"])
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
    (:func:`remember_removal`). Under the group's lock (:func:`lock_group`).
    """
    local_uid = preset.mask_user(user_uid=user_uid, group_uid=group_uid)
    with transaction.atomic():
        lock_group(preset=preset, group_uid=group_uid)
        try:
            return _remove_user(
                preset=preset, group_uid=group_uid, user_uid=user_uid, local_uid=local_uid
            )
        except (UnknownGroup, UnknownGroupUser) as unknown:
            remember_removal(preset=preset, group_uid=group_uid, uid=local_uid)
            refused: LookupError = unknown
    raise refused


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
            membership.removed_at = timezone.now()
            membership.save(update_fields=["is_active", "removed_at", "updated_at"])
            changed = True
        else:
            _refresh_removal(membership)
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
