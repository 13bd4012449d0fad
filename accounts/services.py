"""Write-side business logic of accounts: SSO provisioning, replay cache, login tickets.

Keyword-only, typed functions that views, webhooks and tasks call. How
platform attributes map onto models is the adapter's job
(:mod:`accounts.adapter`); these functions decide *which* rows to create,
link or update, and keep that safe under concurrent logins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from maestrano_integration.conf import Preset
from maestrano_integration.saml import SamlValidationError, SsoAttributes, ValidatedAssertion

from .adapter import DefaultAccountAdapter, get_adapter
from .models import Company, Membership, SsoLoginTicket, UsedAssertion, User
from .signals import company_created, company_reactivated

logger = logging.getLogger(__name__)

MAESTRANO_PROVIDER = "maestrano"
#: How long the browser has to follow the consume view's redirect to the completion view.
LOGIN_TICKET_LIFETIME = dt.timedelta(minutes=2)
_USERNAME_ATTEMPTS = 5


@dataclass(frozen=True)
class SsoLogin:
    """The outcome of one SSO login: who, in which company, and what was created."""

    user: User
    company: Company
    membership: Membership
    company_created: bool
    user_created: bool
    user_migrated: bool


# --- replay cache -----------------------------------------------------------------


def record_assertion_use(*, preset: Preset, assertion_id: str, expires_at: dt.datetime) -> None:
    """Remember ``assertion_id`` until ``expires_at``; raise if it was already used.

    The unique constraint makes this atomic across processes: of two requests
    racing with the same assertion, exactly one inserts the row.
    """
    try:
        with transaction.atomic():
            UsedAssertion.objects.create(
                preset=preset.name, assertion_id=assertion_id, expires_at=expires_at
            )
    except IntegrityError:
        raise SamlValidationError(
            "replayed_assertion", f"assertion {assertion_id} was already used"
        ) from None


def purge_expired_sso_records(*, now: dt.datetime | None = None) -> int:
    """Delete replay-cache rows and login tickets past their expiry; returns how many."""
    moment = now or timezone.now()
    assertions, _ = UsedAssertion.objects.filter(expires_at__lt=moment).delete()
    tickets, _ = SsoLoginTicket.objects.filter(expires_at__lt=moment).delete()
    return assertions + tickets


# --- login tickets (ACS POST -> same-site GET) --------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_login_ticket(*, preset: Preset, assertion: ValidatedAssertion) -> str:
    """Store a validated login for the completion view; returns the one-time token.

    Only the SHA-256 of the token is stored, so a database reader cannot
    complete someone else's login.
    """
    token = secrets.token_urlsafe(32)
    SsoLoginTicket.objects.create(
        token_digest=_digest(token),
        preset=preset.name,
        assertion_id=assertion.assertion_id,
        in_response_to=assertion.in_response_to,
        attributes={**assertion.attributes.raw, "mno_uid": assertion.attributes.name_id},
        expires_at=timezone.now() + LOGIN_TICKET_LIFETIME,
    )
    return token


@dataclass(frozen=True)
class RedeemedTicket:
    preset_name: str
    assertion_id: str
    in_response_to: str
    attributes: SsoAttributes


def redeem_login_ticket(*, token: str) -> RedeemedTicket:
    """Consume the ticket of ``token`` (single use); raise if unknown or expired."""
    if not token or len(token) > 200:
        raise SamlValidationError("invalid_ticket", "missing or malformed ticket")
    with transaction.atomic():
        ticket = (
            SsoLoginTicket.objects.select_for_update().filter(token_digest=_digest(token)).first()
        )
        if ticket is None:
            raise SamlValidationError("invalid_ticket", "unknown or already used ticket")
        ticket.delete()
    if ticket.expires_at <= timezone.now():
        raise SamlValidationError("expired_ticket", f"ticket of {ticket.assertion_id}")
    return RedeemedTicket(
        preset_name=ticket.preset,
        assertion_id=ticket.assertion_id,
        in_response_to=ticket.in_response_to,
        attributes=SsoAttributes.from_mapping(ticket.attributes),
    )


# --- companies ------------------------------------------------------------------------


def find_or_create_company_from_sso(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    adapter: DefaultAccountAdapter | None = None,
) -> tuple[Company, bool]:
    """The company of ``attributes.group_uid`` on ``preset``, created if new (seed 003 §1.2).

    Attributes are refreshed on every login. A cancelled company is active again:
    the platform only sends users of groups that use the service. Two first
    logins racing for a new group create one company: the unique constraint
    refuses the second insert, which then reads the winner's row.
    """
    adapter = adapter or get_adapter()
    lookup = {"preset": preset.name, "group_uid": attributes.group_uid}
    company = Company.objects.filter(**lookup).first()
    created = False
    if company is None:
        company = Company(**lookup)
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
                lambda: company_reactivated.send(sender=Company, company=company, preset=preset)
            )
    else:
        logger.info(
            "Company created from SSO",
            extra={"preset": preset.name, "group": company.group_uid, "company": company.pk},
        )
        transaction.on_commit(
            lambda: company_created.send(sender=Company, company=company, preset=preset)
        )
    return company, created


# --- users ---------------------------------------------------------------------------------


def _unique_username(base: str) -> str:
    base = base[:120] or "user"
    if not User.objects.filter(username__iexact=base).exists():
        return base
    for number in range(2, 12):
        candidate = f"{base}{number}"
        if not User.objects.filter(username__iexact=candidate).exists():
            return candidate
    return f"{base}-{secrets.token_hex(3)}"


def _migration_candidate(
    *, preset: Preset, attributes: SsoAttributes, email: str, adapter: DefaultAccountAdapter
) -> User | None:
    """An active local user with ``email`` and no platform uid, when migration is allowed."""
    if not email:
        return None
    candidates = list(User.objects.filter(email__iexact=email, is_active=True, uid="")[:2])
    if len(candidates) != 1:
        if candidates:
            logger.warning(
                "SSO email migration skipped: several local users share the email",
                extra={"preset": preset.name, "uid": attributes.uid},
            )
        return None
    user = candidates[0]
    if not adapter.is_email_migration_allowed(preset=preset, user=user, attributes=attributes):
        return None
    return user


def find_or_create_user_from_sso(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    adapter: DefaultAccountAdapter | None = None,
) -> tuple[User, bool, bool]:
    """The local user for ``attributes``; returns ``(user, created, migrated)``.

    Real mode identifies people by ``uid``/``email``; virtual mode by
    ``virtual_uid``/``virtual_email`` (one local user per user and group).
    An unknown uid whose email belongs to one active local user without a
    platform uid links that user (seed 003 §1.4, ``SSO_EMAIL_MIGRATION``).
    The platform decides who may log in, so a user it sends is active again.
    """
    adapter = adapter or get_adapter()
    uid = attributes.user_uid(preset.creation_mode)
    email = attributes.user_email(preset.creation_mode)
    user = User.objects.filter(provider=MAESTRANO_PROVIDER, uid=uid).first()
    created = migrated = False
    if user is None:
        user = _migration_candidate(
            preset=preset, attributes=attributes, email=email, adapter=adapter
        )
        if user is not None:
            user.provider, user.uid = MAESTRANO_PROVIDER, uid
            migrated = True
            logger.info(
                "Linked an existing local user to a platform uid (email migration)",
                extra={"preset": preset.name, "uid": uid, "user": user.pk},
            )
    if user is None:
        user, created = _create_user(
            preset=preset, attributes=attributes, uid=uid, email=email, adapter=adapter
        )
    if not created:
        adapter.populate_user(user, preset=preset, attributes=attributes, email=email)
        user.is_active = True
        user.save()
    return user, created, migrated


def _create_user(
    *,
    preset: Preset,
    attributes: SsoAttributes,
    uid: str,
    email: str,
    adapter: DefaultAccountAdapter,
) -> tuple[User, bool]:
    base = adapter.new_username(preset=preset, attributes=attributes, email=email)
    for _attempt in range(_USERNAME_ATTEMPTS):
        user = User(provider=MAESTRANO_PROVIDER, uid=uid, username=_unique_username(base))
        adapter.populate_user(user, preset=preset, attributes=attributes, email=email)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # Either the same person logged in twice at once (take their row), or
            # another user took the username in between (try another one).
            existing = User.objects.filter(provider=MAESTRANO_PROVIDER, uid=uid).first()
            if existing is not None:
                return existing, False
            base = f"{base[:110]}-{secrets.token_hex(3)}"
            continue
        logger.info(
            "User created from SSO",
            extra={"preset": preset.name, "uid": uid, "user": user.pk},
        )
        return user, True
    raise RuntimeError(f"Could not find a free username for platform user {uid}")


# --- memberships ----------------------------------------------------------------------------


def upsert_membership(*, user: User, company: Company, role: str) -> Membership:
    """The active membership of ``user`` in ``company`` with ``role`` (created or updated)."""
    membership, created = Membership.objects.get_or_create(
        user=user, company=company, defaults={"role": role, "is_active": True}
    )
    if not created and (membership.role != role or not membership.is_active):
        membership.role = role
        membership.is_active = True
        membership.save(update_fields=["role", "is_active", "updated_at"])
    return membership


# --- the whole login ---------------------------------------------------------------------------


def provision_sso_login(*, preset: Preset, attributes: SsoAttributes) -> SsoLogin:
    """Find or create the company, the user and the membership of a validated SSO login.

    One transaction: either everything is in place or nothing changed.
    ``company_created`` is sent after commit, once per new company.
    """
    adapter = get_adapter()
    with transaction.atomic():
        company, company_was_created = find_or_create_company_from_sso(
            preset=preset, attributes=attributes, adapter=adapter
        )
        user, user_was_created, migrated = find_or_create_user_from_sso(
            preset=preset, attributes=attributes, adapter=adapter
        )
        membership = upsert_membership(
            user=user,
            company=company,
            role=adapter.membership_role(preset=preset, attributes=attributes),
        )
    return SsoLogin(
        user=user,
        company=company,
        membership=membership,
        company_created=company_was_created,
        user_created=user_was_created,
        user_migrated=migrated,
    )


def switch_company(*, user: User, company_id: int) -> Company:
    """The company ``user`` may switch to (an active membership in an active company).

    Raises :class:`Company.DoesNotExist` otherwise, which views turn into a 404
    so that ids of other tenants are not confirmed.
    """
    return Company.objects.get(
        pk=company_id,
        status=Company.Status.ACTIVE,
        memberships__user=user,
        memberships__is_active=True,
    )
