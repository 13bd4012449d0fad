"""The Connec! notifications webhook (docs/protocol.md,
'Connec! notifications'): per preset, basic auth, answers 202 fast.

A DRF view on :class:`maestrano_integration.platform_api.PlatformAPIView`: the
parser enforces ``SYNC["NOTIFICATION_MAX_BODY_BYTES"]`` (413), ``application/json``
(415) and strict JSON (400); :func:`sync.notifications.receive_notification`
checks the shape and stores the payload.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from maestrano_integration.platform_api import PlatformAPIView, error_response, error_responses

from .notifications import NotificationRejected, max_body_bytes, receive_notification
from .registry import CONNEC_ENTITIES

#: DRF throttle scope of the webhook (``MAESTRANO["THROTTLE_RATES"]``).
THROTTLE_SCOPE = "maestrano_notifications"

#: Not blank: one character that is not whitespace for Python's ``str.strip()`` (the
#: service's rule), which also counts U+001C-U+001F and U+0085 (found by fuzzing).
_NOT_BLANK = {"type": "string", "pattern": "[^\\s\\u001c-\\u001f\\u0085]"}
_RECORD = {
    "type": "object",
    "properties": {"id": _NOT_BLANK, "group_id": _NOT_BLANK, "updated_at": {"type": "string"}},
    "required": ["id", "group_id"],
}


_PAYLOAD = {
    "type": "object",
    "description": (
        "Records keyed by Connec! entity (and the entities of `SYNC['EXTRA_ENTITIES']`); "
        "all records of one group (422 otherwise), a company of the preset (404 otherwise)."
    ),
    "properties": {
        entity: {"type": "array", "items": _RECORD} for entity in sorted(CONNEC_ENTITIES)
    },
    "additionalProperties": False,
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "notification": {"type": ["integer", "null"]},
    },
    "required": ["accepted", "notification"],
}


@extend_schema(
    summary="Records changed by another application of the group",
    request={"application/json": _PAYLOAD},
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
    operation_id = "connec_notifications"
    request_body_required = True
    throttle_scope = THROTTLE_SCOPE

    def max_body_bytes(self) -> int:
        return max_body_bytes()

    def post(self, request: Any, preset: str | None = None) -> Response:
        body = self.raw_json_body()
        try:
            # The parser decoded the body (strict JSON) already: the service checks that
            # value; an empty body is refused by the service's own parse, as ever.
            accepted = receive_notification(
                preset=self.preset, body=self.request.data if body else body
            )
        except NotificationRejected as error:
            return error_response(status_code=error.status, message=str(error))
        return Response(
            {
                "accepted": accepted.record_count,
                "notification": accepted.entry.pk if accepted.entry is not None else None,
            },
            status=202,
        )


connec_notifications = NotificationsWebhook.as_view()
