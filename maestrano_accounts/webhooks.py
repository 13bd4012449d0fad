"""Account webhooks the platform calls (docs/protocol.md, 'Account webhooks'): group and group-user
DELETE.

Thin DRF views on :class:`maestrano_integration.platform_api.PlatformAPIView` (basic
auth per preset, JSON errors, throttling), then :mod:`maestrano_accounts.lifecycle`
does the work. Only DELETE is used by the platform; anything else is a JSON 405.
Answers are ``200 {"success": true}``, also for a repeat and for a group or member
we do not know (nothing to cancel).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response

from maestrano_integration.conf import Preset
from maestrano_integration.platform_api import PlatformAPIView, error_responses
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

#: DRF throttle scope of both webhooks (``MAESTRANO["THROTTLE_RATES"]``).
THROTTLE_SCOPE = "maestrano_account_webhooks"

_SUCCESS = {
    "type": "object",
    "properties": {"success": {"type": "boolean", "enum": [True]}},
    "required": ["success"],
}
_SUCCESS_EXAMPLE = OpenApiExample("Done", value={"success": True}, response_only=True)


def _impossible_id(value: str) -> bool:
    """An id no local row can have: too long, or text no database stores (NUL, lone
    surrogates; PostgreSQL would refuse the query itself). Nothing to cancel."""
    return len(value) > _MAX_ID_LENGTH or not is_safe_text(value)


def _nothing_to_do(*, preset: Preset, message: str, group_id: str, user_id: str = "") -> Response:
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
    return Response({"success": True})


class _AccountWebhook(PlatformAPIView):
    http_method_names = ["delete"]
    throttle_scope = THROTTLE_SCOPE


@extend_schema(
    summary="The group stopped using the application",
    parameters=[
        OpenApiParameter(
            "group_id", str, OpenApiParameter.PATH, description="The group uid (`cld-…`)."
        )
    ],
    responses={200: _SUCCESS, **error_responses(401, 404, 405, 429)},
    examples=[_SUCCESS_EXAMPLE],
    tags=["account webhooks"],
)
class GroupWebhook(_AccountWebhook):
    """``DELETE {groups_path}``: the group cancelled the service."""

    operation_id = "group_deleted"

    def delete(self, request: Any, group_id: str, preset: str | None = None) -> Response:
        if _impossible_id(group_id):
            return _nothing_to_do(preset=self.preset, message="an unknown group", group_id=group_id)
        try:
            cancel_company_from_platform(preset=self.preset, group_uid=group_id)
        except UnknownGroup:
            return _nothing_to_do(preset=self.preset, message="an unknown group", group_id=group_id)
        return Response({"success": True})


@extend_schema(
    summary="A user was removed from the group",
    parameters=[
        OpenApiParameter(
            "group_id", str, OpenApiParameter.PATH, description="The group uid (`cld-…`)."
        ),
        OpenApiParameter(
            "user_id", str, OpenApiParameter.PATH, description="The user uid (`usr-…`)."
        ),
    ],
    responses={200: _SUCCESS, **error_responses(401, 404, 405, 429)},
    examples=[_SUCCESS_EXAMPLE],
    tags=["account webhooks"],
)
class GroupUserWebhook(_AccountWebhook):
    """``DELETE {group_users_path}``: a member was removed from the group."""

    operation_id = "group_user_deleted"

    def delete(
        self, request: Any, group_id: str, user_id: str, preset: str | None = None
    ) -> Response:
        unknown = functools.partial(
            _nothing_to_do, preset=self.preset, group_id=group_id, user_id=user_id
        )
        if _impossible_id(group_id) or _impossible_id(user_id):
            return unknown(message="an unknown member")
        try:
            remove_user_from_company(preset=self.preset, group_uid=group_id, user_uid=user_id)
        except UnknownGroup:
            return unknown(message="an unknown group")
        except UnknownGroupUser:
            return unknown(message="an unknown member")
        return Response({"success": True})


group_deleted = GroupWebhook.as_view()
group_user_deleted = GroupUserWebhook.as_view()
