"""The platform's directory: users, groups, memberships and which apps a group uses.

Shared by the IdP login page, the sandbox pages and the management commands,
so each rule (uid prefixes, "fields left blank keep their value") lives once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction

from .models import Group, GroupMembership, PlatformUser, RegisteredApp
from .models.core import new_group_uid, new_user_uid

logger = logging.getLogger(__name__)


def _apply(instance: Any, values: dict[str, Any]) -> bool:
    """Set the non-``None`` values on ``instance``; True if anything changed."""
    changed = False
    for field, value in values.items():
        if value is not None and getattr(instance, field) != value:
            setattr(instance, field, value)
            changed = True
    return changed


def upsert_user(
    *,
    uid: str | None,
    name: str | None = None,
    surname: str | None = None,
    email: str | None = None,
    country: str | None = None,
    company_name: str | None = None,
) -> PlatformUser:
    """Find the user by ``uid`` (or create one, with a new uid when ``uid`` is empty).

    Values given as ``None`` leave an existing user's fields as they are; a new
    user without them is "Jane Doe" with the email ``<uid>@example.com``.
    """
    values = {
        "name": name,
        "surname": surname,
        "email": email,
        "country": country,
        "company_name": company_name,
    }
    user = PlatformUser.objects.filter(uid=uid).first() if uid else None
    if user is None:
        creation = {k: v for k, v in values.items() if v is not None}
        creation["uid"] = uid or new_user_uid()
        creation.setdefault("name", "Jane")
        creation.setdefault("surname", "Doe")
        creation.setdefault("email", f"{creation['uid']}@example.com")
        user = PlatformUser.objects.create(**creation)
        logger.info("Created platform user", extra={"user": user.uid})
    elif _apply(user, values):
        user.save()
    return user


def upsert_group(
    *,
    uid: str | None,
    name: str | None = None,
    email: str | None = None,
    currency: str | None = None,
    country: str | None = None,
    city: str | None = None,
    timezone: str | None = None,
    free_trial_end_at: dt.datetime | None = None,
    has_credit_card: bool | None = None,
) -> Group:
    """Find the group by ``uid`` (or create it); ``None`` values keep existing fields.

    A new group without a name is called ``Company <uid>``.
    """
    values = {
        "name": name,
        "email": email,
        "currency": currency,
        "country": country,
        "city": city,
        "timezone": timezone,
        "free_trial_end_at": free_trial_end_at,
        "has_credit_card": has_credit_card,
    }
    group = Group.objects.filter(uid=uid).first() if uid else None
    if group is None:
        creation = {k: v for k, v in values.items() if v is not None}
        creation["uid"] = uid or new_group_uid()
        creation.setdefault("name", f"Company {creation['uid']}")
        group = Group.objects.create(**creation)
        logger.info("Created platform group", extra={"group": group.uid})
    elif _apply(group, values):
        group.save()
    return group


def set_membership(*, group: Group, user: PlatformUser, role: str | None) -> GroupMembership:
    """Add ``user`` to ``group`` (or change their role; ``None`` keeps an existing role)."""
    membership, created = GroupMembership.objects.get_or_create(
        group=group, user=user, defaults={"role": role or "Guest"}
    )
    if not created and role and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def start_using_app(*, group: Group, app: RegisteredApp) -> None:
    """The group uses the app from now on (it sees the group in the Account API)."""
    group.apps.add(app)


@transaction.atomic(using="sandbox")
def remove_member(*, group: Group, user: PlatformUser) -> bool:
    """Remove the user from the group; True if they were a member."""
    deleted, _ = GroupMembership.objects.filter(group=group, user=user).delete()
    return bool(deleted)


def stop_using_app(*, group: Group, app: RegisteredApp) -> None:
    """The group cancelled the app: the platform no longer serves it to the group."""
    group.apps.remove(app)
