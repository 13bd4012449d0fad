"""``manage.py sandbox_export_idp_cert``: print the IdP certificate PEM for an app's preset."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from maestrano_sandbox.keys import SIGNATURE_ALGORITHMS, ensure_key_pairs, key_pair_for_algorithm


class Command(BaseCommand):
    help = (
        "Print the sandbox IdP's signing certificate (PEM), generating the key pair on first "
        "use. Put it in the app's preset (sso.x509_certificate / MAESTRANO_SSO_X509_CERTIFICATE)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--algorithm",
            choices=SIGNATURE_ALGORITHMS,
            default="sha256",
            help="sha256 (2048-bit, default) or sha1 (the historical 1024-bit key)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_key_pairs()
        self.stdout.write(key_pair_for_algorithm(options["algorithm"]).certificate_pem, ending="")
