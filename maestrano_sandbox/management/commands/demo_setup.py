"""Prepare the embedded demo: databases, IdP key pair, the demo app's registration and data."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from maestrano_sandbox import directory
from maestrano_sandbox.connec.seed import seed_group
from maestrano_sandbox.keys import ensure_key_pairs
from maestrano_sandbox.models import ConnecRecord
from maestrano_sandbox.registration import register_app

DEMO_GROUP = {"uid": "cld-demo", "name": "Demo Company", "email": "admin@demo.example"}
#: Connec! entities the demo app subscribes to (the same as its metadata's subscriptions).
DEMO_SUBSCRIPTIONS = {"organizations": True, "people": True, "items": True, "invoices": True}
#: Demo Connec! records seeded once into the demo group (imported at the first login).
DEMO_RECORDS = 300
DEMO_USERS = [
    {"uid": "usr-demo-admin", "name": "Alice", "surname": "Admin", "role": "Admin"},
    {"uid": "usr-demo-member", "name": "Bob", "surname": "Member", "role": "Member"},
]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, separator, value = line.strip().partition("=")
        if separator and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


class Command(BaseCommand):
    help = "Migrate both databases and wire the demo app to the sandbox platform."
    requires_system_checks: list[str] = []  # the preset is what this command configures

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--records",
            type=int,
            default=DEMO_RECORDS,
            help=f"Connec! records to seed into an empty demo group (default {DEMO_RECORDS}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.MAESTRANO_SANDBOX["DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True)
        call_command(
            "migrate", database="default", interactive=False, verbosity=0, skip_checks=True
        )
        call_command(
            "migrate", database="sandbox", interactive=False, verbosity=0, skip_checks=True
        )
        ensure_key_pairs()  # the IdP keys are made at set-up, never by a request
        credentials = data_dir / "demo_app.env"
        if not credentials.exists():
            credentials.write_text(
                f"MAESTRANO_API_ID=app-demo\nMAESTRANO_API_KEY={secrets.token_urlsafe(24)}\n"
            )
            credentials.chmod(0o600)
        values = read_env_file(credentials)
        self._register_demo(api_id=values["MAESTRANO_API_ID"], api_key=values["MAESTRANO_API_KEY"])
        self._seed_demo_data(records=options.get("records", DEMO_RECORDS))
        self.stdout.write(self.style.SUCCESS(f"Demo ready (credentials in {credentials})."))

    def _register_demo(self, *, api_id: str, api_key: str) -> None:
        """The demo app is registered at SITE_URL, used by "Demo Company" with two members."""
        with transaction.atomic(using="sandbox"):
            app, _ = register_app(
                api_id=api_id, api_key=api_key, app_host=settings.SITE_URL, name="Demo app"
            )
            if app.subscriptions != DEMO_SUBSCRIPTIONS:
                # What the app's metadata says; "Refresh metadata" in the sandbox reloads it.
                app.subscriptions = DEMO_SUBSCRIPTIONS
                app.save(update_fields=["subscriptions", "updated_at"])
            group = directory.upsert_group(
                uid=DEMO_GROUP["uid"], name=DEMO_GROUP["name"], email=DEMO_GROUP["email"]
            )
            directory.start_using_app(group=group, app=app)
            for person in DEMO_USERS:
                user = directory.upsert_user(
                    uid=person["uid"],
                    name=person["name"],
                    surname=person["surname"],
                    email=f"{person['name'].lower()}@demo.example",
                )
                directory.set_membership(group=group, user=user, role=person["role"])

    def _seed_demo_data(self, *, records: int) -> None:
        """Give the demo group data in Connec! once, for the first login's import to fetch."""
        group = directory.upsert_group(uid=DEMO_GROUP["uid"])
        if records <= 0 or ConnecRecord.objects.filter(group=group).exists():
            return
        result = seed_group(group=group, total=records)
        counts = ", ".join(f"{entity} {count}" for entity, count in result.counts.items())
        self.stdout.write(f"Seeded {group.uid} with Connec! records: {counts}.")
