"""Account adapters that tests name in ``MAESTRANO["ADAPTER"]``."""

from __future__ import annotations

from typing import Any

from accounts.adapter import DefaultAccountAdapter


class StaffMigrationAdapter(DefaultAccountAdapter):
    """Lets email migration link staff accounts too (a project that trusts its platform)."""

    def is_email_migration_allowed(self, *, preset: Any, user: Any, attributes: Any) -> bool:
        return bool(user.is_active)
