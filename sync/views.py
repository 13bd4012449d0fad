"""The Connec! notifications webhook (docs/protocol.md,
'Connec! notifications'): per preset, basic auth, answers 202 fast."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from maestrano_integration.auth import platform_view
from maestrano_integration.conf import Preset

from .notifications import NotificationRejected, max_body_bytes, receive_notification


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
@platform_view
def connec_notifications(request: HttpRequest, *, preset: Preset) -> JsonResponse:
    """Store the notification and answer 202; a task applies it (never inline work here)."""
    limit = max_body_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _error(413, f"The body is larger than {limit} bytes")
    # Read the stream ourselves: the limit is ours, not DATA_UPLOAD_MAX_MEMORY_SIZE's.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(413, f"The body is larger than {limit} bytes")
    try:
        accepted = receive_notification(preset=preset, body=body)
    except NotificationRejected as error:
        return _error(error.status, str(error))
    return JsonResponse(
        {
            "accepted": accepted.record_count,
            "notification": accepted.entry.pk if accepted.entry is not None else None,
        },
        status=202,
    )
