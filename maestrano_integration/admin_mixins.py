"""Admin helpers shared by the reusable apps."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """For log and audit rows (sync runs, inbox/outbox entries, charges, SSO records...).

    They record what happened between the app and the platform; an edited or
    invented row would lie about it, and a deleted one would hide it. So the admin
    shows them and runs their actions (retry), but never adds, changes or deletes
    them. Rows expire or are purged by the code that owns them.
    """

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
