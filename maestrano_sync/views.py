"""The Connec! notifications webhook (docs/protocol.md,
'Connec! notifications'): per preset, basic auth, answers 202 fast.

A DRF view on :class:`maestrano_integration.platform_api.PlatformAPIView`: the
parser enforces ``SYNC["NOTIFICATION_MAX_BODY_BYTES"]`` (413) and ``application/json``
(415); :func:`maestrano_sync.notifications.receive_notification` parses the body (strict JSON,
400), checks the shape, parks the records it cannot apply and stores the others.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from maestrano_integration.platform_api import (
    PlatformAPIView,
    StrictJSONParser,
    error_response,
    error_responses,
)

from .notifications import NotificationRejected, max_body_bytes, receive_notification
from .registry import CONNEC_ENTITIES

#: DRF throttle scope of the webhook (``MAESTRANO["THROTTLE_RATES"]``).
THROTTLE_SCOPE = "maestrano_notifications"

#: A record is an object; anything else in the list, or one that cannot be applied, is
#: parked, never refused, so its properties are described, not constrained.
_RECORD = {
    "description": (
        "A Connec! record (an object); anything else, or one that cannot be applied, is "
        "parked (docs/sync.md)"
    ),
    "properties": {
        "id": {"description": "A non-blank string, or `[{provider, realm, id}]`"},
        "group_id": {"description": "The record's group: a company of the preset"},
        "updated_at": {"description": "ISO 8601 time of the record's version"},
    },
}


_PAYLOAD = {
    "type": "object",
    "description": (
        "Records keyed by Connec! entity (and the entities of `SYNC['EXTRA_ENTITIES']`); "
        "the records of another name are parked (docs/sync.md)."
    ),
    "properties": {
        entity: {"type": "array", "items": _RECORD} for entity in sorted(CONNEC_ENTITIES)
    },
    "additionalProperties": {"type": "array", "items": _RECORD},
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "notification": {"type": ["integer", "null"]},
        "parked": {
            "type": "integer",
            "minimum": 1,
            "description": "Records parked, not applied (only when there are some)",
        },
    },
    "required": ["accepted", "notification"],
}


class _BodyParser(StrictJSONParser):
    """The body limit and media type of :class:`StrictJSONParser`; the body itself is
    parsed by the service, which refuses a bad record, not the whole body."""

    def load(self, body: bytes) -> bytes:
        return body


class _HubBodyParser(_BodyParser):
    """The same, for Connec!'s own media type (docs/protocol.md, 'Paths and media types')."""

    media_type = "application/vnd.api+json"


@extend_schema(
    summary="Records changed by another application of the group",
    request={"application/json": _PAYLOAD, "application/vnd.api+json": _PAYLOAD},
    responses={202: _ACCEPTED, **error_responses(400, 401, 404, 405, 413, 415, 422, 429)},
    examples=[
        OpenApiExample(
            "Two entities",
            value={
                "organizations": [{"id": "7fef3180-6bf8", "group_id": "cld-1", "name": "Acme"}],
                "people": [{"id": "a1b2c3", "group_id": "cld-1", "first_name": "Ada"}],
            },
            request_only=True,
        ),
        OpenApiExample("Stored", value={"accepted": 2, "notification": 42}, response_only=True),
    ],
    tags=["connec notifications"],
)
class NotificationsWebhook(PlatformAPIView):
    """Store the notification and answer 202; a task applies it (never inline work here)."""

    http_method_names = ["post"]
    parser_classes = [_BodyParser, _HubBodyParser]
    operation_id = "connec_notifications"
    request_body_required = True
    throttle_scope = THROTTLE_SCOPE

    def max_body_bytes(self) -> int:
        return max_body_bytes()

    def post(self, request: Any, preset: str | None = None) -> Response:
        try:
            # The raw body, parsed once, by the service (an empty body: not valid JSON).
            accepted = receive_notification(preset=self.preset, body=self.raw_json_body())
        except NotificationRejected as error:
            return error_response(status_code=error.status, message=str(error))
        answer: dict[str, Any] = {
            "accepted": accepted.record_count,
            "notification": accepted.entry.pk if accepted.entry is not None else None,
        }
        if accepted.parked:
            answer["parked"] = accepted.parked
        return Response(answer, status=202)


#: Not in the request's transaction under ``ATOMIC_REQUESTS``: the webhook stores all or
#: nothing itself (one statement on PostgreSQL for one company), and a company deleted
#: meanwhile is looked up again instead of failing the request's ``COMMIT``.
connec_notifications = transaction.non_atomic_requests(NotificationsWebhook.as_view())
