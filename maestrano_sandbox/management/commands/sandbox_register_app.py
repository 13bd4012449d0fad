"""``manage.py sandbox_register_app``: create or update an app registration, scriptably."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maestrano_sandbox.keys import SIGNATURE_ALGORITHMS, ensure_key_pairs
from maestrano_sandbox.registration import MetadataError, refresh_metadata, register_app


class Command(BaseCommand):
    help = (
        "Register an application with the sandbox platform (or update it). With "
        "--from-metadata, fetch its metadata ({app_host}/maestrano/metadata, or the path "
        "--metadata-path gives) for its paths and subscriptions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--api-id", required=True)
        parser.add_argument("--api-key", help="Required for a new app")
        parser.add_argument(
            "--app-host", help="e.g. http://127.0.0.1:8000 (required for a new app)"
        )
        parser.add_argument("--name")
        parser.add_argument("--signature-algorithm", choices=SIGNATURE_ALGORITHMS)
        parser.add_argument(
            "--metadata-path",
            help="where the app serves its metadata (default /maestrano/metadata; "
            "another preset's: /maestrano/<preset>/metadata)",
        )
        parser.add_argument("--from-metadata", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            app, created = register_app(
                api_id=options["api_id"],
                api_key=options["api_key"],
                app_host=options["app_host"],
                name=options["name"],
                signature_algorithm=options["signature_algorithm"],
                metadata_path=options["metadata_path"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        if options["from_metadata"]:
            try:
                refresh_metadata(app)
            except MetadataError as error:
                raise CommandError(f"Registered, but the metadata fetch failed: {error}") from error
        ensure_key_pairs()  # the IdP signs this app's logins with one of them
        verb = "Registered" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {app.api_id} ({app.app_host})."))
