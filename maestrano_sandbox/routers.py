"""Keep the emulated platform in its own database, like the real, remote one.

The app and the sandbox call each other over HTTP while serving requests; with
separate databases they share no tables and no write locks (SQLite locks the
whole file per writer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import Model

SANDBOX_APP_LABEL = "maestrano_sandbox"
SANDBOX_DATABASE = "sandbox"


class SandboxRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return SANDBOX_DATABASE if model._meta.app_label == SANDBOX_APP_LABEL else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        in_sandbox = {o._meta.app_label == SANDBOX_APP_LABEL for o in (obj1, obj2)}
        return len(in_sandbox) == 1

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if app_label == SANDBOX_APP_LABEL:
            return db == SANDBOX_DATABASE
        if db == SANDBOX_DATABASE:
            return False
        return None
