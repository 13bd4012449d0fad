"""Connec! notifications (docs/protocol.md, 'Connec! notifications'): changes POSTed to the *other*
apps of a group.

A write stores one :class:`NotificationDelivery` row per receiving app in the
write's own transaction (an outbox: no row without the change, no change
without its rows) and, once committed, wakes a background thread that POSTs
them. Nothing waits on the receiving app while a database transaction is open.

Who receives: every app of the group except the writer, whose
``subscriptions`` include the entity. An empty ``subscriptions`` dict means
"every entity"; otherwise ``{"people": true, ...}`` lists what the app wants.

Settings, ``settings.MAESTRANO_SANDBOX["NOTIFICATIONS"]`` (all optional):
``BACKGROUND`` (default ``True``: deliver from a thread; ``False``: only
:func:`deliver_pending` delivers), ``TIMEOUT`` (seconds per POST, 5),
``BACKOFF`` (first retry delay in seconds, 1.0, doubled per attempt),
``BACKOFF_MAX`` (60), ``MAX_ATTEMPTS`` (6), ``EXTERNAL_IDS`` (default ``False``:
ids as plain strings; ``True``: as lists of ``{provider, realm, id}``, the
format of older Connec! versions).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from requests.utils import get_environ_proxies

from maestrano_integration.http import build_retry, build_session
from maestrano_sandbox.models import ConnecRecord, Group, NotificationDelivery, RegisteredApp

from .references import render_records

logger = logging.getLogger(__name__)
SANDBOX_DATABASE = "sandbox"
DEFAULTS = {
    "BACKGROUND": True,
    "TIMEOUT": 5.0,
    "BACKOFF": 1.0,
    "BACKOFF_MAX": 60.0,
    "MAX_ATTEMPTS": 6,
    "EXTERNAL_IDS": False,
}
# A row left "delivering" this long after its last update belongs to a dead thread.
STALE_DELIVERING = dt.timedelta(seconds=120)


def notification_settings() -> dict[str, Any]:
    return {**DEFAULTS, **getattr(settings, "MAESTRANO_SANDBOX", {}).get("NOTIFICATIONS", {})}


def is_subscribed(app: RegisteredApp, entity: str) -> bool:
    """An empty ``subscriptions`` dict subscribes the app to every entity."""
    subscriptions = app.subscriptions or {}
    return not subscriptions or bool(subscriptions.get(entity))


def enqueue_changes(
    *,
    records: Iterable[ConnecRecord],
    source_app: RegisteredApp | None,
    groups: Iterable[Group] = (),
) -> list[NotificationDelivery]:
    """Store the deliveries of ``records`` (changed by ``source_app``) for every other app.

    Records changed several times in one request or batch are sent once, in
    their latest state; one delivery per receiving app carries them all.
    Call it inside the write's transaction on the ``sandbox`` database; ``groups``:
    those of the records the caller has read already (the others are read here).
    """
    known = {group.pk: group for group in groups}
    latest: dict[int, ConnecRecord] = {}
    for record in records:
        latest[record.pk] = record
    by_group: dict[int, list[ConnecRecord]] = defaultdict(list)
    for record in latest.values():
        by_group[record.group_id].append(record)
    deliveries = []
    now = timezone.now()
    for group_id, changed in by_group.items():
        group = known.get(group_id) or Group.objects.get(pk=group_id)
        receivers = group.apps.all()
        if source_app is not None:
            receivers = receivers.exclude(pk=source_app.pk)
        subscribed = {
            app: {record.pk for record in changed if is_subscribed(app, record.entity)}
            for app in receivers
        }
        wanted = set().union(*subscribed.values())
        if not wanted:
            continue  # rendering is most of the cost: only what someone receives
        ordered = sorted((r for r in changed if r.pk in wanted), key=lambda r: r.pk)
        external_ids = bool(notification_settings()["EXTERNAL_IDS"])
        bodies = render_records(ordered, group=group, external_ids=external_ids)
        rendered = list(zip(ordered, bodies, strict=True))
        for app, pks in subscribed.items():
            payload: dict[str, list[dict]] = defaultdict(list)
            for record, body in rendered:
                if record.pk in pks:
                    payload[record.entity].append(body)
            if payload:
                deliveries.append(
                    NotificationDelivery(
                        app=app,
                        group=group,
                        source_app=source_app,
                        payload=dict(payload),
                        record_count=sum(len(v) for v in payload.values()),
                        next_attempt_at=now,
                    )
                )
    NotificationDelivery.objects.bulk_create(deliveries)
    if deliveries:
        transaction.on_commit(wake_worker, using=SANDBOX_DATABASE)
    return deliveries


@dataclass(frozen=True)
class AttemptOutcome:
    delivered: bool
    retry: bool
    status_code: int | None
    error: str
    retry_after: float | None = None


_local = threading.local()


def delivery_session() -> requests.Session:
    """This thread's HTTP session, kept for its life: its pool reuses the connections
    to the receiving apps instead of building a session (and a connection) per POST.

    The environment (proxy variables, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) is read
    when the session is made, not by requests on every POST (``trust_env``: a tenth of this
    thread's CPU): the CA bundle here, the proxies of each receiving app's origin on its
    first POST (:func:`delivery_proxies`, ``no_proxy`` honoured).
    """
    session = getattr(_local, "session", None)
    if session is None:
        # No transport retries: the delivery row keeps the retry state and the log.
        session = build_session(retry=build_retry(total=0))
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        session.trust_env = False
        _local.proxies = {}
        _local.session = session
    return session


def delivery_proxies(url: str) -> dict[str, str]:
    """The proxies the environment gives ``url`` (none if ``no_proxy`` names its host), read
    once per origin for the life of this thread's session."""
    delivery_session()
    origin = urlsplit(url)[:2]
    proxies: dict[tuple[str, str], dict[str, str]] = _local.proxies
    if origin not in proxies:
        proxies[origin] = get_environ_proxies(url)
    return proxies[origin]


def post_notification(delivery: NotificationDelivery, *, timeout: float) -> AttemptOutcome:
    """One POST to the app's webhook with the app's own credentials; never raises."""
    app = delivery.app
    url = app.url(app.notifications_path)
    try:
        response = delivery_session().post(
            url,
            json=delivery.payload,
            auth=(app.api_id, app.api_key),
            timeout=timeout,
            proxies=delivery_proxies(url),
        )
    except requests.RequestException as error:
        return AttemptOutcome(False, True, None, f"{type(error).__name__}: {error}"[:1000])
    if 200 <= response.status_code < 300:
        return AttemptOutcome(True, False, response.status_code, "")
    refusal = f"HTTP {response.status_code}: {response.text[:500]}"
    retry_after = None
    if response.status_code == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
    transient = response.status_code == 429 or response.status_code >= 500
    return AttemptOutcome(False, transient, response.status_code, refusal, retry_after)


def claim_due(now: dt.datetime) -> NotificationDelivery | None:
    """Take the oldest due delivery for this thread (an atomic status flip, safe across threads).

    Two queries: the oldest due row with its app, then the flip, conditional on the row
    being as read (status and ``updated_at``: a stale "delivering" row is taken over by
    one thread only); a thread that loses the race reads the next one, up to ten times.
    """
    due = (
        NotificationDelivery.objects.filter(
            Q(status=NotificationDelivery.PENDING, next_attempt_at__lte=now)
            | Q(status=NotificationDelivery.DELIVERING, updated_at__lt=now - STALE_DELIVERING)
        )
        .select_related("app")
        .order_by("next_attempt_at", "pk")
    )
    for _ in range(10):  # bounded: other threads take the rows this one loses
        candidate = due.first()
        if candidate is None:
            return None
        claimed = NotificationDelivery.objects.filter(
            pk=candidate.pk, status=candidate.status, updated_at=candidate.updated_at
        ).update(status=NotificationDelivery.DELIVERING, attempts=F("attempts") + 1, updated_at=now)
        if claimed:
            candidate.status = NotificationDelivery.DELIVERING
            candidate.attempts += 1
            candidate.updated_at = now
            return candidate
    return None


def attempt(delivery: NotificationDelivery) -> None:
    options = notification_settings()
    outcome = post_notification(delivery, timeout=float(options["TIMEOUT"]))
    now = timezone.now()
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    context = {
        "group": delivery.group_id,
        "app": delivery.app.api_id,
        "delivery": delivery.pk,
        "attempt": delivery.attempts,
    }
    if outcome.delivered:
        delivery.status = NotificationDelivery.DELIVERED
        delivery.delivered_at = now
        logger.info("Connec! notification delivered", extra=context)
    elif outcome.retry and delivery.attempts < int(options["MAX_ATTEMPTS"]):
        delay = min(
            float(options["BACKOFF"]) * 2 ** (delivery.attempts - 1), float(options["BACKOFF_MAX"])
        )
        delay = max(delay, outcome.retry_after or 0.0)
        delivery.status = NotificationDelivery.PENDING
        delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
        logger.warning(
            "Connec! notification failed, retrying in %.2fs: %s",
            delay,
            outcome.error,
            extra=context,
        )
    else:
        delivery.status = NotificationDelivery.FAILED
        logger.error("Connec! notification given up: %s", outcome.error, extra=context)
    delivery.save(
        update_fields=[
            "status",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "updated_at",
        ]
    )


def deliver_due() -> int:
    """Attempt every delivery due now; the number of attempts made."""
    count = 0
    while (delivery := claim_due(timezone.now())) is not None:
        attempt(delivery)
        count += 1
    return count


def unfinished() -> Q:
    return Q(status__in=[NotificationDelivery.PENDING, NotificationDelivery.DELIVERING])


def deliver_pending(*, timeout: float = 10.0, ids: Collection[int] | None = None) -> int:
    """Deliver (and wait for) every pending delivery, retries included, for up to ``timeout`` s.

    Returns how many deliveries are still unfinished (0: the queue is drained);
    with ``ids``, waits for those deliveries only (``sandbox_connec_write`` waits for
    its own). Tests call it to wait deterministically; it cooperates with the
    background thread and other processes (a delivery is claimed by exactly one).
    """
    deadline = time.monotonic() + timeout
    while True:
        deliver_due()
        remaining = NotificationDelivery.objects.filter(unfinished())
        if ids is not None:
            remaining = remaining.filter(pk__in=list(ids))
        if not remaining.exists() or time.monotonic() >= deadline:
            return remaining.count()
        next_due = (
            remaining.filter(status=NotificationDelivery.PENDING)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        wait = 0.02
        if next_due is not None:
            wait = max(wait, (next_due - timezone.now()).total_seconds())
        time.sleep(min(wait, max(deadline - time.monotonic(), 0.0), 1.0))


class DeliveryWorker:
    """A daemon thread that delivers due notifications, woken after each commit.

    It sleeps without touching the database until woken by a commit or by the
    timer of the next retry. It keeps its database connection across a burst of
    wake-ups (a batch endpoint commits several times a second) and closes it once
    idle for ``IDLE_CLOSE`` seconds, or when :meth:`release_connections` asks (tests
    drop their databases, which an open connection would block).
    """

    MAX_TIMER = 60.0
    IDLE_CLOSE = 2.0

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._release = threading.Event()
        self._released = threading.Event()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-connec-notifications", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def release_connections(self, *, timeout: float = 5.0) -> bool:
        """Have the thread close its database connections now (False: not done in time)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                return True
            self._released.clear()
            self._release.set()
        self._wake.set()
        return self._released.wait(timeout)

    def _run(self) -> None:
        failed = False
        while True:
            if not self._wake.wait(self.IDLE_CLOSE):
                connections.close_all()  # idle: hold no connection while asleep
                self._wake.wait()
            self._wake.clear()
            if self._release.is_set():
                self._release.clear()
                connections.close_all()
                self._released.set()
                continue
            try:
                deliver_due()
                self._schedule_retries()
                failed = False
            except Exception:
                logger.exception("Connec! notification worker failed; will retry")
                # A broken connection (say, closed by the server while kept) is not kept:
                # one more try in a second, on a new one; after a second failure in a
                # row, the next commit or retry timer wakes the thread.
                connections.close_all()
                if not failed:
                    self._wake_in(1.0)
                failed = True

    def _schedule_retries(self) -> None:
        next_due = (
            NotificationDelivery.objects.filter(status=NotificationDelivery.PENDING)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if next_due is not None:
            self._wake_in(max((next_due - timezone.now()).total_seconds(), 0.0))

    def _wake_in(self, delay: float) -> None:
        timer = threading.Timer(min(delay, self.MAX_TIMER), self._wake.set)
        timer.daemon = True
        timer.start()


_worker = DeliveryWorker()


def release_connections(*, timeout: float = 5.0) -> bool:
    """Have the delivery thread close its database connections now (False: not done in
    time). Test runs call it before they drop their test databases, which an open
    connection would block (``maestrano_sandbox.pytest_plugin``)."""
    return _worker.release_connections(timeout=timeout)


def wake_worker() -> None:
    if notification_settings()["BACKGROUND"]:
        _worker.wake()
