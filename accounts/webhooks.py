"""Account webhooks the platform calls (docs/protocol.md, 'Account webhooks'): group and group-user
DELETE.

Thin views: basic auth per preset (:func:`maestrano_integration.auth.platform_view`),
then :mod:`accounts.lifecycle` does the work. Only DELETE is used by the
platform; anything else is 405. Answers are JSON: ``200 {"success": true}``,
also for a repeat; ``404 {"error": ...}`` for an unknown group or member.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from maestrano_integration.auth import platform_view
from maestrano_integration.conf import Preset
from maestrano_integration.strict_input import is_safe_text

from .lifecycle import (
    UnknownGroup,
    UnknownGroupUser,
    cancel_company_from_platform,
    remove_user_from_company,
)

logger = logging.getLogger(__name__)

# Longer ids cannot exist locally (Company.group_uid, PlatformIdentity.uid lengths).
_MAX_ID_LENGTH = 100


def _impossible_id(value: str) -> bool:
    """An id no local row can have: too long, or text no database stores (NUL, lone
    surrogates; PostgreSQL would refuse the query itself). Nothing to cancel."""
    return len(value) > _MAX_ID_LENGTH or not is_safe_text(value)


def _nothing_to_do(
    *, preset: Preset, message: str, group_id: str, user_id: str = ""
) -> JsonResponse:
    """Success for a group or member we do not know: there is nothing to cancel."""
    logger.info(
        "Account webhook for %s: nothing to do",
        message,
        extra={
            "preset": preset.name,
            "group": group_id[:_MAX_ID_LENGTH],
            "uid": user_id[:_MAX_ID_LENGTH],
        },
    )
    return JsonResponse({"success": True})


@csrf_exempt
@require_http_methods(["DELETE"])
@platform_view
def group_deleted(request: HttpRequest, *, preset: Preset, group_id: str) -> JsonResponse:
    """``DELETE {groups_path}``: the group cancelled the service."""
    if _impossible_id(group_id):
        return _nothing_to_do(preset=preset, message="an unknown group", group_id=group_id)
    try:
        cancel_company_from_platform(preset=preset, group_uid=group_id)
    except UnknownGroup:
        return _nothing_to_do(preset=preset, message="an unknown group", group_id=group_id)
    return JsonResponse({"success": True})


@csrf_exempt
@require_http_methods(["DELETE"])
@platform_view
def group_user_deleted(
    request: HttpRequest, *, preset: Preset, group_id: str, user_id: str
) -> JsonResponse:
    """``DELETE {group_users_path}``: a member was removed from the group."""
    unknown = {"preset": preset, "group_id": group_id, "user_id": user_id}
    if _impossible_id(group_id) or _impossible_id(user_id):
        return _nothing_to_do(message="an unknown member", **unknown)
    try:
        remove_user_from_company(preset=preset, group_uid=group_id, user_uid=user_id)
    except UnknownGroup:
        return _nothing_to_do(message="an unknown group", **unknown)
    except UnknownGroupUser:
        return _nothing_to_do(message="an unknown member", **unknown)
    return JsonResponse({"success": True})
