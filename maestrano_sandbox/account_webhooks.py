"""Account webhooks (docs/protocol.md, 'Account webhooks'), platform → app: "the group cancelled"
and "user removed".

Each call is logged as an :class:`AccountWebhookDelivery` and retried with
exponential backoff on 5xx, 429, timeouts and connection errors
(``settings.MAESTRANO_SANDBOX``: ``WEBHOOK_MAX_ATTEMPTS`` default 4,
``WEBHOOK_BACKOFF_SECONDS`` default 1.0, doubled each attempt,
``WEBHOOK_TIMEOUT_SECONDS`` default 10). Delivery runs outside any database
transaction: the app may call the Account API back while handling it
(a final bill), so the group still uses the app until the webhook is answered.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from maestrano_integration.http import build_retry, build_session

from .models import (
    AccountWebhookDelivery,
    Group,
    PlatformSession,
    PlatformUser,
    RecurringBill,
    RegisteredApp,
)

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT_CHARS = 500
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def _setting(name: str, default: float) -> float:
    return float(settings.MAESTRANO_SANDBOX.get(name, default))


def group_url(app: RegisteredApp, group_uid: str) -> str:
    return app.url(app.groups_path.replace(":id", quote(group_uid, safe="")))


def group_user_url(app: RegisteredApp, group_uid: str, user_uid: str) -> str:
    path = app.group_users_path.replace(":group_id", quote(group_uid, safe=""))
    return app.url(path.replace(":id", quote(user_uid, safe="")))


def deliver(delivery: AccountWebhookDelivery) -> AccountWebhookDelivery:
    """Send (or re-send) ``delivery`` until it succeeds, fails for good, or attempts run out."""
    app = delivery.app
    max_attempts = max(1, int(_setting("WEBHOOK_MAX_ATTEMPTS", 4)))
    backoff = _setting("WEBHOOK_BACKOFF_SECONDS", 1.0)
    timeout = _setting("WEBHOOK_TIMEOUT_SECONDS", 10.0)
    # Retries are counted and logged here, so the transport itself never retries.
    http = build_session(auth=(app.api_id, app.api_key), retry=build_retry(total=0))
    context = {
        "app": app.api_id,
        "group": delivery.group_uid,
        "user": delivery.user_uid,
        "delivery": delivery.pk,
    }
    try:
        for attempt in range(1, max_attempts + 1):
            delivery.attempts += 1
            transient = False
            try:
                response = http.request(delivery.method, delivery.url, timeout=timeout)
            except requests.RequestException as error:
                transient = True
                delivery.response_status = None
                delivery.response_body = ""
                delivery.last_error = f"{type(error).__name__}: {error}"[:RESPONSE_EXCERPT_CHARS]
            else:
                delivery.response_status = response.status_code
                delivery.response_body = response.text[:RESPONSE_EXCERPT_CHARS]
                delivery.last_error = ""
                if 200 <= response.status_code < 300:
                    delivery.status = AccountWebhookDelivery.SUCCEEDED
                    delivery.delivered_at = timezone.now()
                    delivery.save()
                    logger.info("Account webhook delivered", extra=context)
                    return delivery
                transient = response.status_code in TRANSIENT_STATUSES
                delivery.last_error = f"HTTP {response.status_code}"
            if not transient or attempt == max_attempts:
                break
            delivery.save()
            logger.warning(
                "Account webhook attempt failed; retrying",
                extra={**context, "attempt": attempt, "error": delivery.last_error},
            )
            time.sleep(backoff * 2 ** (attempt - 1))
    finally:
        http.close()
    delivery.status = AccountWebhookDelivery.FAILED
    delivery.save()
    logger.warning("Account webhook failed", extra={**context, "error": delivery.last_error})
    return delivery


def notify_group_cancelled(*, app: RegisteredApp, group_uid: str) -> AccountWebhookDelivery:
    """``DELETE {app}{groups_path}``: the webhook only, no change on the platform side."""
    delivery = AccountWebhookDelivery.objects.create(
        app=app,
        kind=AccountWebhookDelivery.GROUP_CANCELLED,
        group_uid=group_uid,
        url=group_url(app, group_uid),
    )
    return deliver(delivery)


def notify_user_removed(
    *, app: RegisteredApp, group_uid: str, user_uid: str
) -> AccountWebhookDelivery:
    """``DELETE {app}{group_users_path}``: the webhook only, no change on the platform side."""
    delivery = AccountWebhookDelivery.objects.create(
        app=app,
        kind=AccountWebhookDelivery.USER_REMOVED,
        group_uid=group_uid,
        user_uid=user_uid,
        url=group_user_url(app, group_uid, user_uid),
    )
    return deliver(delivery)


def cancel_group_service(*, group: Group, app: RegisteredApp) -> AccountWebhookDelivery:
    """The group stops using the app: tell the app, then stop serving it to the group.

    The app is told first, while the group still uses it, so it can send a final
    bill; then the app leaves the group's apps and its live recurring bills and
    sessions for the group end.
    """
    delivery = notify_group_cancelled(app=app, group_uid=group.uid)
    with transaction.atomic(using="sandbox"):
        group.apps.remove(app)
        RecurringBill.objects.filter(
            app=app, group=group, status__in=[RecurringBill.SUBMITTED, RecurringBill.ACTIVE]
        ).update(status=RecurringBill.CANCELLED, updated_at=timezone.now())
        PlatformSession.objects.filter(app=app, group=group, invalidated_at__isnull=True).update(
            invalidated_at=timezone.now()
        )
    logger.info("Group cancelled the app", extra={"app": app.api_id, "group": group.uid})
    return delivery


def remove_user_from_group(
    *, group: Group, user: PlatformUser, apps: list[RegisteredApp] | None = None
) -> list[AccountWebhookDelivery]:
    """Remove the member and tell every app the group uses (or only ``apps``).

    The membership is removed and the user's sessions in the group closed after
    the webhooks, whatever their outcome: the removal is a platform fact.
    """
    targets = apps if apps is not None else list(group.apps.all())
    deliveries = [
        notify_user_removed(app=app, group_uid=group.uid, user_uid=user.uid) for app in targets
    ]
    with transaction.atomic(using="sandbox"):
        group.memberships.filter(user=user).delete()
        PlatformSession.objects.filter(user=user, group=group, invalidated_at__isnull=True).update(
            invalidated_at=timezone.now()
        )
    logger.info("User removed from group", extra={"group": group.uid, "user": user.uid})
    return deliveries


def redeliver(delivery: AccountWebhookDelivery) -> AccountWebhookDelivery:
    """Send a logged delivery again (admin action / button), keeping its attempt count."""
    delivery.status = AccountWebhookDelivery.PENDING
    delivery.save(update_fields=["status", "updated_at"])
    return deliver(delivery)
