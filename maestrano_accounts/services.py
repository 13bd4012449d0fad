"""Write-side business logic of accounts: SSO provisioning, memberships, company switch.

Keyword-only, typed functions that views, webhooks and tasks call (what SSO
remembers between requests is :mod:`maestrano_accounts.sso_state`'s). How
platform attributes map onto models is the adapter's job
(:mod:`maestrano_accounts.adapter`); these functions decide *which* rows to create,
link or update, and keep that safe under concurrent logins.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max, Subquery
from django.utils import timezone

from maestrano_integration.conf import Preset
from maestrano_integration.kept_query import KeptQuery, KeptUpdate, PreparedWrite
from maestrano_integration.model_fields import model_field
from maestrano_integration.saml import SsoAttributes

from .adapter import DefaultAccountAdapter, get_adapter
from .emails import same_email
from .lifecycle import lock_group
from .models import Company, Membership, PlatformIdentity, PlatformRemoval
from .selectors import accessible_companies
from .signals import company_created, company_reactivated, member_added

logger = logging.getLogger(__name__)

_USERNAME_ATTEMPTS = 5


@dataclass(frozen=True)
class SsoLogin:
    """The outcome of one SSO login: who, in which company, and what was created."""

    user: AbstractBaseUser
    company: Company
    membership: Membership
    company_created: bool
    user_created: bool
    user_migrated: bool
    #: A repeat login's write of the identity's login time, email and extra data, left
    #: for once ``login()`` is done (:func:`maestrano_accounts.sso_state.holding_login_writes`);
    #: ``None`` when the login wrote them itself (a first login, or one that changed rows).
    login_times: PreparedWrite | None = None


class RemovedDuringLogin(Exception):
    """The platform cancelled the group, or removed the user from it, after this login was
    vouched for (its assertion issued, or accepted by the ACS if that was earlier:
    :attr:`maestrano_accounts.sso_state.RedeemedTicket.counts_from`): the login does not
    bring that access back, even when a later login brought it back meanwhile. A login
    vouched for after the removal does (docs/protocol.md, 'Account webhooks')."""


def _removed_since(removed_at: dt.datetime | None, *, validated_at: dt.datetime | None) -> bool:
    """The rule of :class:`RemovedDuringLogin`: the platform's last removal (a company's or a
    membership's ``removed_at``, kept after a login brought it back; one kept before either
    existed, :class:`PlatformRemoval`) is not older than the time the login counts from."""
    return removed_at is not None and validated_at is not None and removed_at >= validated_at


# --- companies ------------------------------------------------------------------------


def find_or_create_company_from_sso(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    adapter: DefaultAccountAdapter | None = None,
    validated_at: dt.datetime | None = None,
    removed_at: dt.datetime | None = None,
) -> tuple[Company, bool]:
    """The company of ``attributes.group_uid`` on ``preset``, created if new (docs/protocol.md,
    'First login and email migration').

    Attributes are refreshed on every login. A cancelled company is active again:
    the platform only sends users of groups that use the service; but not by a login
    that counts from (``validated_at``) before the group's last cancellation, even if
    another login reactivated it since (:class:`RemovedDuringLogin`). A new company keeps
    ``removed_at``, the time of a cancellation that came before it existed. Two
    first logins racing for a new group create one company: the unique constraint
    refuses the second insert, which then reads the winner's row.
    """
    adapter = adapter or get_adapter()
    lookup = {"preset": preset.name, "group_uid": attributes.group_uid}
    company = Company.objects.filter(**lookup).first()
    created = False
    if company is None:
        company = Company(**lookup, removed_at=removed_at)
        adapter.populate_company(company, preset=preset, attributes=attributes)
        try:
            with transaction.atomic():
                company.save()
            created = True
        except IntegrityError:
            logger.info(
                "Company created by a concurrent login; joining it",
                extra={"preset": preset.name, "group": attributes.group_uid},
            )
            company = Company.objects.get(**lookup)
    if not created:
        if _removed_since(company.removed_at, validated_at=validated_at):
            raise RemovedDuringLogin(
                f"group {company.group_uid} was cancelled after the login was issued"
            )
        reactivated = company.status == Company.Status.CANCELLED
        adapter.populate_company(company, preset=preset, attributes=attributes)
        if reactivated:
            company.status = Company.Status.ACTIVE
            company.cancelled_at = None
            logger.info(
                "Company reactivated by an SSO login",
                extra={"preset": preset.name, "group": company.group_uid},
            )
        company.save()
        if reactivated:
            transaction.on_commit(
                lambda: company_reactivated.send(
                    sender=Company, company=company, preset=preset, attributes=attributes
                )
            )
    else:
        logger.info(
            "Company created from SSO",
            extra={"preset": preset.name, "group": company.group_uid, "company": company.pk},
        )
        transaction.on_commit(
            lambda: company_created.send(
                sender=Company, company=company, preset=preset, attributes=attributes
            )
        )
    return company, created


# --- users ---------------------------------------------------------------------------------


class AccountConflict(Exception):
    """A new platform user cannot get a local account without taking over an existing one.

    Raised when the user model's unique username is the email and the local
    account holding that email may not be linked (staff, superuser, inactive,
    already linked, or email migration refused by the adapter).
    """


def _unique_username(base: str) -> str:
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    max_length = model_field(user_model, field).max_length or 150
    base = base[: max_length - 8] or "user"
    manager = user_model._default_manager
    if not manager.filter(**{f"{field}__iexact": base}).exists():
        return base
    for number in range(2, 12):
        candidate = f"{base}{number}"
        if not manager.filter(**{f"{field}__iexact": candidate}).exists():
            return candidate
    return f"{base}-{secrets.token_hex(3)}"


#: How many users whose email the database matches case-insensitively are read; the
#: exact rule of :func:`same_email` then keeps at most one of them.
_EMAIL_MATCHES_READ = 20


def _identity_of(*, preset: Preset, uid: str) -> PlatformIdentity | None:
    return (
        PlatformIdentity.objects.select_related("user").filter(preset=preset.name, uid=uid).first()
    )


def _uses_email_as_username() -> bool:
    """Whether the user model's username is its email: one account per address then."""
    user_model = get_user_model()
    return user_model.USERNAME_FIELD == user_model.get_email_field_name()


def _migration_candidate(
    *, preset: Preset, attributes: SsoAttributes, email: str, adapter: DefaultAccountAdapter
) -> tuple[AbstractBaseUser | None, bool]:
    """The one local user with ``email`` that the adapter allows to link, or ``None``; and
    whether a local account holds that address (:func:`same_email`) all the same."""
    if not email:
        return None, False
    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    # The database's case-insensitive match only narrows the search: PostgreSQL's UPPER()
    # maps letters outside ASCII onto ASCII ones (a dotless i onto "I"), so a lookalike
    # address would match. The match that links is :func:`same_email`.
    matches = user_model._default_manager.filter(**{f"{email_field}__iexact": email})
    candidates = [
        user
        for user in matches[:_EMAIL_MATCHES_READ]
        if same_email(getattr(user, email_field, None) or "", email)
    ]
    if len(candidates) != 1:
        if candidates:
            logger.warning(
                "SSO email migration skipped: several local users share the email",
                extra={"preset": preset.name, "uid": attributes.uid},
            )
        return None, bool(candidates)
    user = candidates[0]
    if not adapter.is_email_migration_allowed(preset=preset, user=user, attributes=attributes):
        logger.warning(
            "SSO email migration refused for an existing local account",
            extra={"preset": preset.name, "uid": attributes.uid, "user": user.pk},
        )
        return None, True
    return user, True


def find_or_create_user_from_sso(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    adapter: DefaultAccountAdapter | None = None,
) -> tuple[AbstractBaseUser, bool, bool]:
    """The local user for ``attributes``; returns ``(user, created, migrated)``.

    Users are found through their :class:`PlatformIdentity` (preset, uid): the
    real ``uid`` in real mode, ``virtual_uid`` in virtual mode (one local user per
    user and group). An unknown uid whose email belongs to one local user that
    the adapter allows to link (``SSO_EMAIL_MIGRATION``; see
    :meth:`DefaultAccountAdapter.is_email_migration_allowed`) links that user;
    otherwise a new user is created. The platform decides who may log in, so a
    user it sends is active again. A linked user's attributes are refreshed, except
    a value another local account holds (:func:`_save_refreshed_user`).
    """
    adapter = adapter or get_adapter()
    uid = attributes.user_uid(preset.creation_mode)
    email = attributes.user_email(preset.creation_mode)
    identity = _identity_of(preset=preset, uid=uid)
    created = migrated = False
    if identity is None:
        user, held = _migration_candidate(
            preset=preset, attributes=attributes, email=email, adapter=adapter
        )
        if user is None and held and _uses_email_as_username():
            # A second account for the same address, in other case, would sit beside the
            # one that holds it: the person could not tell them apart at the login form.
            # Unless that account is the person's own, made by a concurrent first login.
            identity = _identity_of(preset=preset, uid=uid)
            if identity is None:
                raise AccountConflict(
                    f"a local account already uses the email of platform user {uid}"
                )
        elif user is not None:
            identity = _link_identity(user=user, preset=preset, uid=uid)
            migrated = identity.user_id == user.pk
            if migrated:
                logger.info(
                    "Linked an existing local user to a platform uid (email migration)",
                    extra={"preset": preset.name, "uid": uid, "user": user.pk},
                )
        else:
            identity, created = _create_user(
                preset=preset, attributes=attributes, uid=uid, email=email, adapter=adapter
            )
    user = identity.user
    if not created:
        stored = _field_values(user)
        adapter.populate_user(user, preset=preset, attributes=attributes, email=email)
        user.is_active = True
        _save_refreshed_user(user=user, stored=stored, preset=preset, uid=uid)
    identity.email = email[:254]
    identity.extra_data = adapter.identity_extra_data(preset=preset, attributes=attributes)
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["email", "extra_data", "last_login_at"])
    return user, created, migrated


def _save_refreshed_user(
    *, user: AbstractBaseUser, stored: dict[str, Any], preset: Preset, uid: str
) -> None:
    """Save ``user`` refreshed by a login; a value another local account holds is not taken.

    The platform may send a value that a unique field of another local account
    already holds: a linked user's new email that is another account's, where the
    user model's username is the email. The identity (preset, uid) says who logs
    in, not the email, so the login goes on as the linked account and keeps its
    current value: first of the fields that may clash (the email, the username and
    unique fields), else of every field the refresh changed. A warning names the
    preset, the uid and the fields kept, never their values; the identity keeps
    the email the platform sent (``PlatformIdentity.email``).
    """
    try:
        with transaction.atomic():
            user.save()
        return
    except IntegrityError:
        pass
    user_model = type(user)
    # Every user model declares USERNAME_FIELD (AbstractBaseUser, the stubs' type, does not).
    username_field = user_model.USERNAME_FIELD  # type: ignore[attr-defined]
    clashing = {username_field, user_model.get_email_field_name()}
    clashing.update(field.name for field in user_model._meta.concrete_fields if field.unique)
    for fields in user_model._meta.unique_together:
        clashing.update(fields)
    for constraint in user_model._meta.total_unique_constraints:
        clashing.update(constraint.fields)
    changed = [
        field
        for field in user_model._meta.concrete_fields
        if field.attname != "is_active" and getattr(user, field.attname) != stored[field.attname]
    ]
    first = [field for field in changed if field.name in clashing]
    for kept in (first, changed):
        if not kept:
            continue
        for field in kept:
            setattr(user, field.attname, stored[field.attname])
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            if kept is changed:
                raise
            continue
        logger.warning(
            "SSO login kept the local account's %s: another local account holds the "
            "value the platform sent",
            ", ".join(field.name for field in kept),
            extra={"preset": preset.name, "uid": uid, "user": user.pk},
        )
        return
    user.save()  # nothing the refresh changed: the database's answer is raised again


def _link_identity(*, user: AbstractBaseUser, preset: Preset, uid: str) -> PlatformIdentity:
    """The identity (preset, uid), linked to ``user`` unless a concurrent login linked it first."""
    try:
        with transaction.atomic():
            return PlatformIdentity.objects.create(user=user, preset=preset.name, uid=uid)  # type: ignore[misc]  # any AUTH_USER_MODEL (the plugin knows the example's)
    except IntegrityError:
        return PlatformIdentity.objects.select_related("user").get(preset=preset.name, uid=uid)


def _create_user(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    uid: str,
    email: str,
    adapter: DefaultAccountAdapter,
) -> tuple[PlatformIdentity, bool]:
    """A new local user and its identity, created together (one savepoint).

    Returns ``(identity, created)``; ``created`` is false when a concurrent
    first login of the same person won the race (its identity is returned).
    """
    user_model = get_user_model()
    base = adapter.new_username(preset=preset, attributes=attributes, email=email)
    uses_email_as_username = _uses_email_as_username()
    for _attempt in range(_USERNAME_ATTEMPTS):
        user = user_model()
        adapter.populate_user(user, preset=preset, attributes=attributes, email=email)
        if not uses_email_as_username:
            setattr(user, user_model.USERNAME_FIELD, _unique_username(base))
        elif not email:
            raise AccountConflict(f"platform user {uid} has no email for the local account")
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
                identity = PlatformIdentity.objects.create(user=user, preset=preset.name, uid=uid)
        except IntegrityError:
            # The same person logging in twice at once (take their identity), the
            # username taken in between (try another), or the email held by an
            # account that may not be linked (refuse).
            existing = (
                PlatformIdentity.objects.select_related("user")
                .filter(preset=preset.name, uid=uid)
                .first()
            )
            if existing is not None:
                return existing, False
            if uses_email_as_username:
                raise AccountConflict(
                    f"a local account already uses the email of platform user {uid}"
                ) from None
            base = f"{base[:110]}-{secrets.token_hex(3)}"
            continue
        logger.info(
            "User created from SSO",
            extra={"preset": preset.name, "uid": uid, "user": user.pk},
        )
        return identity, True
    raise RuntimeError(f"Could not find a free username for platform user {uid}")


# --- memberships ----------------------------------------------------------------------------


def upsert_membership(
    *,
    user: AbstractBaseUser,
    company: Company,
    role: str,
    preset: Preset | None = None,
    validated_at: dt.datetime | None = None,
    removed_at: dt.datetime | None = None,
) -> Membership:
    """The active membership of ``user`` in ``company`` with ``role`` (created or updated).

    ``member_added`` is sent after commit when the membership was not active before.
    A membership removed since ``validated_at`` (the time the login counts from) stays
    removed, even if another login brought it back since: :class:`RemovedDuringLogin`. A
    new membership keeps ``removed_at``, the time of a removal that came before it existed.
    """
    membership, created = Membership.objects.get_or_create(
        user=user,  # type: ignore[misc]  # any AUTH_USER_MODEL (the plugin knows the example's)
        company=company,
        defaults={"role": role, "is_active": True, "removed_at": removed_at},
    )
    if not created and _removed_since(membership.removed_at, validated_at=validated_at):
        raise RemovedDuringLogin(
            f"the user was removed from group {company.group_uid} after the login was issued"
        )
    joined = created or not membership.is_active
    if not created and (membership.role != role or not membership.is_active):
        membership.role = role
        membership.is_active = True
        membership.save(update_fields=["role", "is_active", "updated_at"])
    if joined:
        transaction.on_commit(
            lambda: member_added.send(
                sender=Company, company=company, user=user, membership=membership, preset=preset
            )
        )
    return membership


# --- the whole login ---------------------------------------------------------------------------


def provision_sso_login(
    *, preset: Preset, attributes: SsoAttributes, validated_at: dt.datetime | None = None
) -> SsoLogin:
    """Find or create the company, the user and the membership of a validated SSO login.

    One transaction: either everything is in place or nothing changed.
    ``company_created`` is sent after commit, once per new company. A repeat
    login that changes nothing takes :func:`_unchanged_login` instead: one read, and
    the identity's write of its login time left to the caller, for once the login is
    done (:attr:`SsoLogin.login_times`).

    ``validated_at`` is the time the login counts from (the login ticket's
    :attr:`~maestrano_accounts.sso_state.RedeemedTicket.counts_from`: when the IdP issued
    the assertion, or when the ACS accepted it if earlier): a company cancelled, or a
    membership removed, by the platform since then is not brought back, even when another
    login brought it back meanwhile; :class:`RemovedDuringLogin` is raised and nothing
    changes. The repeat login's path reads the removal times with the rows (no query
    more) and leaves such a login to this one.

    The group's lock (:func:`maestrano_accounts.lifecycle.lock_group`, shared with other
    logins) comes first: a removal webhook of the same group runs before or after, never
    beside, this transaction.
    """
    adapter = get_adapter()
    unchanged = _unchanged_login(
        preset=preset, attributes=attributes, adapter=adapter, validated_at=validated_at
    )
    if unchanged is not None:
        return unchanged
    with transaction.atomic():
        lock_group(preset=preset, group_uid=attributes.group_uid, shared=True)
        kept = _kept_removals(preset=preset, attributes=attributes)
        if _removed_since(kept.group, validated_at=validated_at):
            raise RemovedDuringLogin(
                f"the platform cancelled group {attributes.group_uid} after the login was issued"
            )
        if _removed_since(kept.member, validated_at=validated_at):
            raise RemovedDuringLogin(
                f"the user was removed from group {attributes.group_uid} after the login was issued"
            )
        company, company_was_created = find_or_create_company_from_sso(
            preset=preset,
            attributes=attributes,
            adapter=adapter,
            validated_at=validated_at,
            removed_at=kept.group,
        )
        adapter.link_company(
            company, preset=preset, attributes=attributes, created=company_was_created
        )
        user, user_was_created, migrated = find_or_create_user_from_sso(
            preset=preset, attributes=attributes, adapter=adapter
        )
        membership = upsert_membership(
            user=user,
            company=company,
            role=adapter.membership_role(preset=preset, attributes=attributes),
            preset=preset,
            validated_at=validated_at,
            removed_at=kept.member,
        )
    return SsoLogin(
        user=user,
        company=company,
        membership=membership,
        company_created=company_was_created,
        user_created=user_was_created,
        user_migrated=migrated,
    )


@dataclass(frozen=True)
class _KeptRemovals:
    """The latest removals of a group (``group``) and of the login's user from it
    (``member``) that found nothing to cancel here (:class:`PlatformRemoval`)."""

    group: dt.datetime | None
    member: dt.datetime | None


def _kept_removals(*, preset: Preset, attributes: SsoAttributes) -> _KeptRemovals:
    """The removals the platform made while neither the company nor the membership was known
    here (``maestrano_accounts.lifecycle.remember_removal``), in one query: a login that
    counts from before them does not create what was removed; one that counts from after
    them creates the rows with their time, which a login counting from before them then
    finds there (even on the repeat login's path)."""
    uid = attributes.user_uid(preset.creation_mode)
    latest = dict(
        PlatformRemoval.objects.filter(
            preset=preset.name, group_uid=attributes.group_uid, uid__in=["", uid]
        )
        .values("uid")
        .annotate(latest=Max("removed_at"))
        .order_by()
        .values_list("uid", "latest")
    )
    return _KeptRemovals(group=latest.get(""), member=latest.get(uid) if uid else None)


def _field_values(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


#: The repeat login's one read: the membership with its company and user, of the user
#: the identity (preset, uid) names. At most one row (one company per group, one identity
#: per uid, one membership per pair): sliced, not ``first()``, whose ORDER BY costs a
#: quarter of the query. The identity is a scalar subquery (``(preset, uid)`` is unique;
#: sliced all the same, as Django 6.1 requires of a queryset compared with ``=``), not a
#: fourth joined table: PostgreSQL plans three joined tables in a third of the time
#: it takes for four (0.25 against 0.85 ms, more than running the query costs; see
#: docs/performance.md). Kept compiled: building and compiling it cost the ORM more than
#: running it.
_REPEAT_LOGIN_MEMBERSHIP = KeptQuery(
    Membership,
    lambda preset, group_uid, uid: Membership.objects.select_related("company", "user").filter(
        company__preset=preset,
        company__group_uid=group_uid,
        user=Subquery(PlatformIdentity.objects.filter(preset=preset, uid=uid).values("user")[:1]),
    )[:1],
)

#: Its one write: the identity's email, extra data and login time (every login writes them).
_IDENTITY_LOGIN = KeptUpdate(
    PlatformIdentity, fields=("email", "extra_data", "last_login_at"), where=("preset", "uid")
)


def _unchanged_login(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    adapter: DefaultAccountAdapter,
    validated_at: dt.datetime | None,
) -> SsoLogin | None:
    """A repeat login that changes no row: one read, and the identity's write of its login
    time left to the caller, once the login is done (:attr:`SsoLogin.login_times`).

    One query reads the membership with its company and user, found through the
    identity (preset, uid). ``None`` (the full, transactional path then runs)
    when any of them is missing, the company is cancelled, the platform removed the
    membership or cancelled the company since ``validated_at`` (brought back by another
    login since: the full path refuses this one), or refreshing the
    company, the user or the membership from ``attributes`` would change a
    value; also when the adapter links companies to a tenant of its own
    (``link_company`` runs inside the full path's transaction).
    """
    if type(adapter).link_company is not DefaultAccountAdapter.link_company:
        return None
    uid = attributes.user_uid(preset.creation_mode)
    email = attributes.user_email(preset.creation_mode)
    membership = _REPEAT_LOGIN_MEMBERSHIP.first(
        preset=preset.name, group_uid=attributes.group_uid, uid=uid
    )
    if membership is None or not membership.is_active:
        return None
    company, user = membership.company, membership.user
    if company.status != Company.Status.ACTIVE:
        return None
    if _removed_since(membership.removed_at, validated_at=validated_at) or _removed_since(
        company.removed_at, validated_at=validated_at
    ):
        return None
    before = (_field_values(company), _field_values(user))
    adapter.populate_company(company, preset=preset, attributes=attributes)
    adapter.populate_user(user, preset=preset, attributes=attributes, email=email)
    user.is_active = True
    if (_field_values(company), _field_values(user)) != before:
        return None
    if membership.role != adapter.membership_role(preset=preset, attributes=attributes):
        return None
    return SsoLogin(
        user=user,
        company=company,
        membership=membership,
        company_created=False,
        user_created=False,
        user_migrated=False,
        login_times=_IDENTITY_LOGIN.prepare(
            where={"preset": preset.name, "uid": uid},
            values={
                "email": email[:254],
                "extra_data": adapter.identity_extra_data(preset=preset, attributes=attributes),
                "last_login_at": timezone.now(),
            },
        ),
    )


def switch_company(*, user: AbstractBaseUser, company_id: int, preset: str | None) -> Company:
    """The company ``user`` may switch to (an active membership in an active company), of
    ``preset`` for a session logged in through that preset's SSO (``None``: a login
    without SSO, any preset; see :func:`~maestrano_accounts.selectors.session_companies`).

    Raises :class:`Company.DoesNotExist` otherwise, which views turn into a 404
    so that ids of other tenants (and of other marketplaces) are not confirmed.
    """
    return accessible_companies(user=user, preset=preset).get(pk=company_id)
