"""Deployment check: the sandbox (an emulated platform anyone can use) is never deployed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_sandbox_not_mounted(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check --deploy`` fails while ``/sandbox/`` is mounted.

    Its identity provider signs a login for any user and group a visitor types,
    its APIs answer any group's data: a deployment that mounts it is open to all.
    """
    if not getattr(settings, "MAESTRANO_SANDBOX", {}).get("ENABLED"):
        return []
    return [
        checks.Error(
            "The Maestrano sandbox (an emulated platform for development) is mounted.",
            hint="Unset SANDBOX_ENABLED and SANDBOX_FORCE in production (docs/deploy.md).",
            id="maestrano_sandbox.E001",
        )
    ]
