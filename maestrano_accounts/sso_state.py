"""Everything single sign-on remembers between requests, in one place.

* **Pending AuthnRequests**: the ids of the requests this browser session sent
  to the IdP (with their preset, expiry and deep link), kept in the session by
  :func:`remember_request` and checked once by :func:`answered_request`.
* **IdP-initiated policy**: a response that answers no request is accepted
  only when ``SSO_ALLOW_IDP_INITIATED`` is on (:func:`refuse_if_unsolicited`),
  and never replaces another user's login without the person's confirmation
  (:func:`needs_confirmation`, :func:`reissue_for_confirmation`).
* **Replay cache**: every accepted assertion id is stored until it expires
  (:func:`record_assertion_use`); a second use is refused.
* **Login tickets**: the consume view hands a validated login over to the
  completion view through a one-time token (:func:`issue_login_ticket`,
  :func:`redeem_login_ticket`), bound to the browser by its session
  (SP-initiated) or by a nonce cookie (IdP-initiated, :func:`set_nonce_cookie`).

See :mod:`maestrano_accounts.views` for why the login completes on a second request.

Where they live: by default in the database (:class:`maestrano_accounts.models.UsedAssertion`,
:class:`maestrano_accounts.models.SsoLoginTicket`). A repeat login then writes two rows in the
ACS request (replay cache and ticket, one statement each) and reads-and-deletes the
ticket with one statement in the completion request; expired rows are purged at most
once per ``PURGE_INTERVAL`` per process, not on every login.

With ``MAESTRANO["SSO_STATE_CACHE"]`` naming a cache shared by every process (Redis,
Memcached; checked by :meth:`MaestranoSettings.sso_state_cache`), both live there
instead and cost no database statement: an assertion id is remembered with the
atomic ``cache.add`` (of two requests racing with one assertion, exactly one adds
it), kept until the assertion expires; a ticket is read, then deleted, and only the
request whose ``cache.delete`` removed it may use it (of two racing redemptions,
exactly one wins). Tickets expire with the cache's timeout and by their own expiry.
In Redis (:class:`maestrano_integration.cache.RedisCache`) each step is one round
trip: the replay ``add`` and the ticket ``set`` one atomic script (no ticket for a
refused assertion), the ticket taken with ``GETDEL``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.sessions.backends.base import SessionBase
from django.core.cache.backends.base import BaseCache
from django.db import IntegrityError, connections, router, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from maestrano_integration.cache import RedisCache
from maestrano_integration.conf import Preset, maestrano_settings
from maestrano_integration.kept_query import PreparedWrite
from maestrano_integration.model_fields import column_name
from maestrano_integration.saml import SamlValidationError, SsoAttributes, ValidatedAssertion
from maestrano_integration.transaction_settings import own_commit_without_flush

from .cache_session_store import SessionStore as CacheSessionStore
from .models import SsoLoginTicket, UsedAssertion
from .sessions import platform_session

#: Session key of the AuthnRequest ids this browser is waiting for: {id: {preset, expires, next}}.
PENDING_REQUESTS_KEY = "maestrano_sso_requests"
#: How long an AuthnRequest may take to come back (login page, password...).
REQUEST_LIFETIME_SECONDS = 15 * 60
MAX_PENDING_REQUESTS = 5
#: Cookie that binds an IdP-initiated login's ticket to the browser that posted the response.
#: Its name says AUTH so that Django's error reports (SafeExceptionReporterFilter) hide its
#: value, as they hide the session cookie's: a completion that fails before it redeems the
#: ticket would otherwise mail both halves of an unused login to the ADMINS.
BROWSER_NONCE_COOKIE = "maestrano_sso_auth_nonce"
#: Its name over HTTPS: a ``__Host-`` cookie, which browsers keep only when it is Secure,
#: for path ``/`` and without a ``Domain``: a sibling subdomain cannot plant one (cookie
#: tossing would otherwise bind a victim's browser to an attacker's completion link).
SECURE_BROWSER_NONCE_COOKIE = "__Host-" + BROWSER_NONCE_COOKIE
#: How long the browser has to follow the consume view's redirect to the completion view.
LOGIN_TICKET_LIFETIME = dt.timedelta(minutes=2)
#: Expired replay-cache rows and tickets are deleted at most this often (per process).
PURGE_INTERVAL = dt.timedelta(minutes=1)
#: Prefix of the keys of ``MAESTRANO["SSO_STATE_CACHE"]`` (under the cache's own KEY_PREFIX).
CACHE_KEY_PREFIX = "maestrano:sso"


def _state_cache() -> BaseCache | None:
    return maestrano_settings.sso_state_cache()


def _timeout_until(moment: dt.datetime) -> int:
    """Whole seconds from now until ``moment``, at least one (a cache timeout)."""
    return max(1, int((moment - timezone.now()).total_seconds()) + 1)


# --- IdP-initiated policy ------------------------------------------------------------------


def refuse_if_unsolicited(*, in_response_to: str) -> None:
    """Raise when a response answers no AuthnRequest and IdP-initiated logins are off."""
    if not in_response_to and not maestrano_settings.SSO_ALLOW_IDP_INITIATED:
        raise SamlValidationError(
            "unsolicited_response", "IdP-initiated logins are disabled", status=403
        )


def needs_confirmation(request: HttpRequest, *, preset: Preset, ticket: RedeemedTicket) -> bool:
    """Whether an IdP-initiated login would replace another user's login in this browser.

    Such a response may have been posted by another site (an auto-submitted form
    carrying its author's own login: login CSRF); the nonce cookie binds the ticket to
    the browser that posted, which is then the victim's. So the person is asked first
    when the browser is logged in, unless as the same platform user of the same preset.
    An SP-initiated login answers this browser's own request: never asked.
    """
    if ticket.in_response_to:
        return False
    current = platform_session(request) or {}
    if (current.get("preset"), current.get("uid")) == (preset.name, ticket.attributes.uid):
        return False  # read from the session alone: a repeat login loads no user for this
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


# --- pending AuthnRequests (in the browser's session) --------------------------------------


def _pending_requests(request: HttpRequest) -> dict[str, dict[str, Any]]:
    pending = request.session.get(PENDING_REQUESTS_KEY)
    if not isinstance(pending, dict):
        return {}
    now = time.time()
    return {
        request_id: entry
        for request_id, entry in pending.items()
        if isinstance(entry, dict) and float(entry.get("expires", 0)) > now
    }


def remember_request(
    request: HttpRequest, *, request_id: str, preset: Preset, next_url: str
) -> None:
    """Keep an AuthnRequest id in the session (the newest ``MAX_PENDING_REQUESTS``)."""
    pending = _pending_requests(request)
    pending[request_id] = {
        "preset": preset.name,
        "expires": time.time() + REQUEST_LIFETIME_SECONDS,
        "next": next_url,
    }
    newest = sorted(pending.items(), key=lambda item: item[1]["expires"])[-MAX_PENDING_REQUESTS:]
    request.session[PENDING_REQUESTS_KEY] = dict(newest)


def answered_request(
    request: HttpRequest, *, preset: Preset, in_response_to: str
) -> dict[str, Any] | None:
    """SP-initiated: the response must answer a request this browser session made, once.

    Returns that request's pending entry (with its ``next``), ``None`` for an
    IdP-initiated login (refused when the policy forbids them).
    """
    if not in_response_to:
        refuse_if_unsolicited(in_response_to=in_response_to)
        return None
    pending = _pending_requests(request)
    entry = pending.pop(in_response_to, None)
    request.session[PENDING_REQUESTS_KEY] = pending
    if entry is None or entry.get("preset") != preset.name:
        raise SamlValidationError(
            "unknown_in_response_to",
            "the response answers no request of this browser session",
        )
    return entry


# --- one statement, atomic ------------------------------------------------------------------


@contextlib.contextmanager
def _one_statement(model: type) -> Iterator[None]:
    """Around a single write that may fail on a unique constraint.

    In autocommit mode one statement is atomic by itself. Inside a caller's
    transaction a savepoint keeps the failure from breaking that transaction.
    """
    connection = transaction.get_connection(router.db_for_write(model))
    if connection.in_atomic_block:
        with transaction.atomic(using=connection.alias):
            yield
    else:
        yield


#: The writes of the login times of the repeat login this thread is logging in, held until
#: its ``login()`` is done; ``None`` outside such a login.
_held_login_writes: contextvars.ContextVar[list[PreparedWrite] | None] = contextvars.ContextVar(
    "sso_held_login_writes", default=None
)


@contextlib.contextmanager
def holding_login_writes(login_times: PreparedWrite) -> Iterator[None]:
    """Around ``login()`` of a repeat login (nothing to create or change: only login times
    to write, :attr:`maestrano_accounts.services.SsoLogin.login_times`): ``login_times``
    and the login-time writes asked for meanwhile (:func:`hold_login_write`: Django's
    ``last_login``, by :mod:`maestrano_accounts.last_login`) are written once the block
    has run, and only if it ran to its end: a login that fails (a ``user_logged_in``
    receiver raises) writes no login time.

    Written together, in one statement on PostgreSQL (one round trip, one commit, no
    ``BEGIN``; :meth:`~maestrano_integration.kept_query.PreparedWrite.run_after`), one by
    one elsewhere. With ``SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT`` off (docs/deploy.md), that
    statement, outside any transaction of the caller's, also lets its commit return
    before PostgreSQL flushes it to disk
    (:data:`~maestrano_integration.transaction_settings.COMMIT_WITHOUT_FLUSH_EXPRESSION`):
    a server crash may lose the last fraction of a second of such commits (older login
    times), never half of one; nothing else is relaxed, not even the writes of
    ``user_logged_in`` receivers.
    """
    held = [login_times]
    token = _held_login_writes.set(held)
    try:
        yield
    finally:
        _held_login_writes.reset(token)
    *before, last = held
    relaxed = not maestrano_settings.SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT
    last.run_after(
        *before, returning=own_commit_without_flush(using=last.alias) if relaxed else None
    )


def hold_login_write(write: PreparedWrite) -> bool:
    """For a write of a login time made during ``login()`` (Django's ``last_login``):
    whether it is held to go with the repeat login's own (:func:`holding_login_writes`);
    the caller then does not run it. ``False`` outside such a login."""
    held = _held_login_writes.get()
    if held is None:
        return False
    held.append(write)
    return True


# --- replay cache ---------------------------------------------------------------------------


def record_assertion_use(*, preset: Preset, assertion_id: str, expires_at: dt.datetime) -> None:
    """Remember ``assertion_id`` until ``expires_at``; raise if it was already used.

    The unique constraint (or, in ``SSO_STATE_CACHE``, the atomic ``add``) makes
    this atomic across processes: of two requests racing with the same assertion,
    exactly one records it.
    """
    cache = _state_cache()
    if cache is not None:
        if not cache.add(
            _assertion_key(preset, assertion_id), 1, timeout=_timeout_until(expires_at)
        ):
            raise _replayed(assertion_id)
        return
    try:
        with _one_statement(UsedAssertion):
            UsedAssertion.objects.create(
                preset=preset.name, assertion_id=assertion_id, expires_at=expires_at
            )
    except IntegrityError:
        raise _replayed(assertion_id) from None


def _assertion_key(preset: Preset, assertion_id: str) -> str:
    return f"{CACHE_KEY_PREFIX}:assertion:{_digest(repr((preset.name, assertion_id)))}"


def _replayed(assertion_id: str) -> SamlValidationError:
    return SamlValidationError("replayed_assertion", f"assertion {assertion_id} was already used")


_purge_lock = threading.Lock()
_last_purge: float = 0.0


def purge_expired_sso_records(*, now: dt.datetime | None = None) -> int:
    """Delete replay-cache rows and login tickets past their expiry; returns how many.

    However it is called, the next purge by :func:`purge_expired_if_due` in this process
    is due ``PURGE_INTERVAL`` later.

    An expired row does no harm meanwhile: an expired assertion is refused by its
    times before the replay cache is asked, an expired ticket by its own expiry.
    """
    _claim_purge(only_if_due=False)
    return _delete_expired(now or timezone.now())


def purge_expired_if_due() -> None:
    """:func:`purge_expired_sso_records`, at most once per ``PURGE_INTERVAL`` in this process."""
    if _claim_purge(only_if_due=True):
        _delete_expired(timezone.now())


def _delete_expired(moment: dt.datetime) -> int:
    assertions, _ = UsedAssertion.objects.filter(expires_at__lt=moment).delete()
    tickets, _ = SsoLoginTicket.objects.filter(expires_at__lt=moment).delete()
    return assertions + tickets


def _claim_purge(*, only_if_due: bool) -> bool:
    """Start this process's purge interval again now; with ``only_if_due``, only when it has
    run out (of two threads asking at once, one gets ``True``)."""
    global _last_purge
    with _purge_lock:
        now = time.monotonic()
        if only_if_due and now - _last_purge < PURGE_INTERVAL.total_seconds():
            return False
        _last_purge = now
        return True


# --- login tickets (ACS POST -> same-site GET) ----------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedTicket:
    """The one-time token for the completion URL and, for an IdP-initiated login, the
    browser nonce to set as a cookie (empty for SP-initiated logins: the session binds them)."""

    token: str
    browser_nonce: str


#: How precisely an assertion's ``IssueInstant`` is read: to the second (a fraction is
#: ignored, as python3-saml reads SAML times; the sandbox's IdP writes none). The time stands
#: for that whole second (:attr:`RedeemedTicket.counts_from`).
ISSUE_TIME_RESOLUTION = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class RedeemedTicket:
    preset_name: str
    assertion_id: str
    in_response_to: str
    attributes: SsoAttributes
    #: When the consume view accepted the assertion.
    validated_at: dt.datetime
    #: When the IdP issued it (:attr:`maestrano_integration.saml.ValidatedAssertion.issued_at`);
    #: ``None`` for a ticket stored before tickets kept it.
    issued_at: dt.datetime | None = None

    @property
    def counts_from(self) -> dt.datetime:
        """The time this login counts from: what the platform removed at or after it, the
        login does not bring back (:func:`maestrano_accounts.services.provision_sso_login`).

        When the IdP issued the assertion, if that is earlier than when the ACS accepted it:
        an assertion issued before a removal and posted after it vouches for the user as
        they were before. The issue time is read to the second and stands for the end of
        that second (:data:`ISSUE_TIME_RESOLUTION`), so that a login issued just after a
        removal within the same second is not refused. The clock skew
        (``SSO_CLOCK_SKEW_SECONDS``) is deliberately not added: the IdP's time is compared
        with our removal times as it is. An IdP clock ahead of ours (up to the skew the ACS
        allows) only moves this back to the acceptance time, the rule before issue times
        were read; one behind ours refuses a login issued less than that offset after a
        removal, and the person's next login, issued later, is accepted. Erring the other
        way would let an assertion issued before a removal bring back what it removed.
        """
        if self.issued_at is None:
            return self.validated_at
        return min(self.validated_at, self.issued_at + ISSUE_TIME_RESOLUTION)


def accept_assertion(*, preset: Preset, assertion: ValidatedAssertion) -> IssuedTicket:
    """What the ACS does with a validated assertion: policy, replay cache, then a ticket.

    In Redis (:class:`maestrano_integration.cache.RedisCache`) the replay cache's ``add``
    and the ticket's ``set`` are one atomic script (one round trip): the ticket is
    written only when the assertion was new, as with the two calls of other caches.
    """
    refuse_if_unsolicited(in_response_to=assertion.in_response_to)
    cache = _state_cache()
    if isinstance(cache, RedisCache):
        ticket, issued = _new_ticket(preset=preset, assertion=assertion)
        if not cache.add_then_set(
            _assertion_key(preset, assertion.assertion_id),
            1,
            _ticket_key(ticket.token_digest),
            _ticket_fields(ticket),
            add_timeout=_timeout_until(assertion.expires_at),
            timeout=int(LOGIN_TICKET_LIFETIME.total_seconds()),
        ):
            raise _replayed(assertion.assertion_id)
        return issued
    if cache is None:
        purge_expired_if_due()
    record_assertion_use(
        preset=preset, assertion_id=assertion.assertion_id, expires_at=assertion.expires_at
    )
    return issue_login_ticket(preset=preset, assertion=assertion)


def _new_ticket(
    *, preset: Preset, assertion: ValidatedAssertion
) -> tuple[SsoLoginTicket, IssuedTicket]:
    """A ticket for ``assertion`` (not stored yet) and the token (and nonce) it is issued with."""
    return _ticket(
        preset_name=preset.name,
        assertion_id=assertion.assertion_id,
        in_response_to=assertion.in_response_to,
        attributes=assertion.attributes,
        issued_at=assertion.issued_at,
    )


def _ticket(
    *,
    preset_name: str,
    assertion_id: str,
    in_response_to: str,
    attributes: SsoAttributes,
    issued_at: dt.datetime | None,
    validated_at: dt.datetime | None = None,
) -> tuple[SsoLoginTicket, IssuedTicket]:
    """A new ticket, its token and nonce; ``validated_at`` that of the login it carries on
    (a confirmation's), else now; ``issued_at`` the assertion's."""
    token = secrets.token_urlsafe(32)
    nonce = "" if in_response_to else secrets.token_urlsafe(32)
    now = timezone.now()
    ticket = SsoLoginTicket(
        token_digest=_digest(token),
        preset=preset_name,
        assertion_id=assertion_id,
        in_response_to=in_response_to,
        browser_digest=_digest(nonce) if nonce else "",
        attributes={**attributes.raw, "mno_uid": attributes.name_id},
        expires_at=now + LOGIN_TICKET_LIFETIME,
        validated_at=validated_at or now,
        issued_at=issued_at,
    )
    return ticket, IssuedTicket(token=token, browser_nonce=nonce)


def issue_login_ticket(*, preset: Preset, assertion: ValidatedAssertion) -> IssuedTicket:
    """Store a validated login for the completion view; returns its token (and nonce).

    Only SHA-256 digests of the token and nonce are stored, so a database reader
    cannot complete someone else's login. An SP-initiated login is bound to the
    browser by its session (``InResponseTo``); an IdP-initiated one has no such
    request, so it is bound to a nonce that only the posting browser receives:
    a completion link taken by someone else is refused in any other browser.
    """
    ticket, issued = _new_ticket(preset=preset, assertion=assertion)
    _store_ticket(ticket)
    return issued


def reissue_for_confirmation(*, ticket: RedeemedTicket) -> IssuedTicket:
    """A new ticket for the login of ``ticket`` (redeemed, so used up), for the
    confirmation form of :func:`needs_confirmation`: bound to this browser by a new
    nonce, valid for another :data:`LOGIN_TICKET_LIFETIME`. It keeps the times the assertion
    was issued and accepted: the person's confirmation does not make the login newer."""
    fresh, issued = _ticket(
        preset_name=ticket.preset_name,
        assertion_id=ticket.assertion_id,
        in_response_to="",
        attributes=ticket.attributes,
        issued_at=ticket.issued_at,
        validated_at=ticket.validated_at,
    )
    _store_ticket(fresh)
    return issued


def _store_ticket(ticket: SsoLoginTicket) -> None:
    cache = _state_cache()
    if cache is None:
        ticket.save(force_insert=True)
    else:
        cache.set(
            _ticket_key(ticket.token_digest),
            _ticket_fields(ticket),
            timeout=int(LOGIN_TICKET_LIFETIME.total_seconds()),
        )


_TICKET_FIELDS = (
    "preset",
    "assertion_id",
    "in_response_to",
    "browser_digest",
    "attributes",
    "expires_at",
    "validated_at",
    "issued_at",
)


def _ticket_key(token_digest: str) -> str:
    return f"{CACHE_KEY_PREFIX}:ticket:{token_digest}"


def _ticket_fields(ticket: SsoLoginTicket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in _TICKET_FIELDS}


def _take_cached_ticket(
    cache: BaseCache, token_digest: str, *, session: SessionBase | None = None
) -> SsoLoginTicket | None:
    """Take the ticket: in Redis with one ``GETDEL``; elsewhere read it, then delete it.
    Either way only the caller that removed it gets it.

    In Redis, a ``session`` of :mod:`maestrano_accounts.cache_session_store` kept in the
    same cache and not loaded yet is read in the same round trip (the completion reads it
    next, to check ``InResponseTo``)."""
    key = _ticket_key(token_digest)
    if isinstance(cache, RedisCache):
        along = session.key_to_load_along(cache) if isinstance(session, CacheSessionStore) else None
        if along is None:
            stored = cache.pop(key)
        else:
            stored, session_data = cache.pop_and_get(key, along)
            cast(CacheSessionStore, session).loaded(session_data)
    else:
        stored = cache.get(key)
        if isinstance(stored, dict) and not cache.delete(key):
            return None
    if not isinstance(stored, dict):
        return None
    return SsoLoginTicket(token_digest=token_digest, **stored)


def _take_ticket(token: str, *, session: SessionBase | None = None) -> SsoLoginTicket | None:
    """Delete the ticket of ``token`` and return it, in one statement (``DELETE ... RETURNING``).

    Of two requests racing with the same token, only one gets the row.
    """
    cache = _state_cache()
    if cache is not None:
        return _take_cached_ticket(cache, _digest(token), session=session)
    opts = SsoLoginTicket._meta
    connection = connections[router.db_for_write(SsoLoginTicket)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column_name(f)) for f in opts.concrete_fields)
    sql = (
        f"DELETE FROM {quote(opts.db_table)} "  # noqa: S608 (identifiers from the model)
        f"WHERE {quote(column_name(opts.get_field('token_digest')))} = %s RETURNING {columns}"
    )
    rows = list(SsoLoginTicket.objects.raw(sql, [_digest(token)]))
    return rows[0] if rows else None


def redeem_login_ticket(
    *, token: str, browser_nonce: str = "", session: SessionBase | None = None
) -> RedeemedTicket:
    """Consume the ticket of ``token`` (single use); raise if unknown, expired or, for a
    ticket bound to a browser, if ``browser_nonce`` (the cookie) is not that browser's.

    A refused ticket is used up all the same: a stolen link works nowhere. ``session``:
    the browser's, which the completion reads next; in Redis it may be read along with
    the ticket (:func:`_take_cached_ticket`).
    """
    if not token or len(token) > 200:
        raise SamlValidationError("invalid_ticket", "missing or malformed ticket")
    ticket = _take_ticket(token, session=session)
    if ticket is None:
        raise SamlValidationError("invalid_ticket", "unknown or already used ticket")
    if ticket.expires_at <= timezone.now():
        raise SamlValidationError("expired_ticket", f"ticket of {ticket.assertion_id}")
    if ticket.browser_digest and not (
        browser_nonce
        and len(browser_nonce) <= 200
        and hmac.compare_digest(ticket.browser_digest, _digest(browser_nonce))
    ):
        raise SamlValidationError(
            "wrong_browser",
            f"ticket of {ticket.assertion_id} was issued to another browser",
            status=403,
        )
    return RedeemedTicket(
        preset_name=ticket.preset,
        assertion_id=ticket.assertion_id,
        in_response_to=ticket.in_response_to,
        attributes=SsoAttributes.from_mapping(ticket.attributes),
        validated_at=ticket.validated_at or ticket.expires_at - LOGIN_TICKET_LIFETIME,
        issued_at=ticket.issued_at,
    )


# --- the nonce cookie of IdP-initiated logins -------------------------------------------------


def set_nonce_cookie(
    response: HttpResponse, *, request: HttpRequest, nonce: str, complete_path: str
) -> None:
    """Give the posting browser the nonce of its ticket (IdP-initiated logins only).

    A Lax cookie set on this cross-site top-level POST is stored, and sent on the
    top-level GET that follows the redirect; the completion view requires it. Its
    path is ``complete_path``, the completion view's (the caller has it already:
    the redirect's target, or the completion request's own path); over HTTPS it is a
    ``__Host-`` cookie (:data:`SECURE_BROWSER_NONCE_COOKIE`), whose path is ``/``.
    """
    if not nonce:
        return
    name, path = _nonce_cookie(request, path=complete_path)
    response.set_cookie(
        name,
        nonce,
        max_age=int(LOGIN_TICKET_LIFETIME.total_seconds()),
        path=path,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def _nonce_cookie(request: HttpRequest, *, path: str) -> tuple[str, str]:
    """The nonce cookie's name and path for ``request``: ``__Host-`` and ``/`` over HTTPS,
    the plain name and ``path`` over plain HTTP (development)."""
    if request.is_secure():
        return SECURE_BROWSER_NONCE_COOKIE, "/"
    return BROWSER_NONCE_COOKIE, path


def nonce_cookie(request: HttpRequest) -> str:
    """The nonce the browser sent, under the name :func:`set_nonce_cookie` gives it for this
    scheme (over HTTPS, a nonce without the ``__Host-`` prefix is not one of ours)."""
    name, _ = _nonce_cookie(request, path=request.path)
    return request.COOKIES.get(name, "")


def forget_nonce(response: HttpResponse, *, request: HttpRequest) -> HttpResponse:
    """The nonce served its one ticket (used or refused): remove it from the browser.

    Called by the completion view, whose own path is the cookie's; nothing to remove
    when the browser sent none (an SP-initiated login).
    """
    name, path = _nonce_cookie(request, path=request.path)
    if name in request.COOKIES:
        response.delete_cookie(name, path=path, samesite="Lax")
    return response
