"""Account webhooks the platform calls (PROTOCOL.md §4): group and group-user DELETE.

Thin views: basic auth per preset (:func:`maestrano_integration.auth.platform_view`),
then :mod:`accounts.billing.lifecycle` does the work. Only DELETE is used by the
platform; anything else is 405. Answers are JSON: ``200 {"success": true}``,
also for a repeat; ``404 {"error": ...}`` for an unknown group or member.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from maestrano_integration.auth import platform_view
from maestrano_integration.conf import Preset

from .billing.lifecycle import (
    UnknownGroup,
    UnknownGroupUser,
    cancel_company_from_platform,
    remove_user_from_company,
)

# Longer ids cannot exist locally (Company.group_uid, User.uid lengths).
_MAX_ID_LENGTH = 100


def _not_found(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=404)


@csrf_exempt
@require_http_methods(["DELETE"])
@platform_view
def group_deleted(request: HttpRequest, *, preset: Preset, group_id: str) -> JsonResponse:
    """``DELETE {groups_path}``: the group cancelled the service."""
    if len(group_id) > _MAX_ID_LENGTH:
        return _not_found(f"Unknown group {group_id[:_MAX_ID_LENGTH]!r}")
    try:
        cancel_company_from_platform(preset=preset, group_uid=group_id)
    except UnknownGroup:
        return _not_found(f"Unknown group {group_id!r}")
    return JsonResponse({"success": True})


@csrf_exempt
@require_http_methods(["DELETE"])
@platform_view
def group_user_deleted(
    request: HttpRequest, *, preset: Preset, group_id: str, user_id: str
) -> JsonResponse:
    """``DELETE {group_users_path}``: a member was removed from the group."""
    if len(group_id) > _MAX_ID_LENGTH or len(user_id) > _MAX_ID_LENGTH:
        return _not_found("Unknown group or user")
    try:
        remove_user_from_company(preset=preset, group_uid=group_id, user_uid=user_id)
    except UnknownGroup:
        return _not_found(f"Unknown group {group_id!r}")
    except UnknownGroupUser:
        return _not_found(f"Unknown user {user_id!r} in group {group_id!r}")
    return JsonResponse({"success": True})
