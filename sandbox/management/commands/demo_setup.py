"""Prepare the embedded demo: databases, sandbox IdP key pair and the demo app's credentials."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from sandbox.keys import ensure_idp_key_pair


class Command(BaseCommand):
    help = "Migrate both databases and wire the demo app to the sandbox platform."
    requires_system_checks: list[str] = []  # the preset is what this command configures

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.SANDBOX["DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True)
        call_command(
            "migrate", database="default", interactive=False, verbosity=0, skip_checks=True
        )
        call_command(
            "migrate", database="sandbox", interactive=False, verbosity=0, skip_checks=True
        )
        ensure_idp_key_pair()
        credentials = data_dir / "demo_app.env"
        if not credentials.exists():
            credentials.write_text(
                f"MAESTRANO_API_ID=app-demo\nMAESTRANO_API_KEY={secrets.token_urlsafe(24)}\n"
            )
            credentials.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Demo ready (credentials in {credentials})."))
