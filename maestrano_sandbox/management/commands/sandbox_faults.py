"""Configure the faults the sandbox injects into one app's calls (see
``maestrano_sandbox.faults``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maestrano_sandbox.faults import validate_rates
from maestrano_sandbox.models import FaultConfig, RegisteredApp

OPTION_FIELDS = {
    "error_rate": "error_rate",
    "error_status": "error_status",
    "rate_limit_rate": "rate_limit_rate",
    "retry_after": "retry_after",
    "latency_ms": "latency_ms",
    "drop_rate": "drop_rate",
    "gateway_timeout_rate": "gateway_timeout_rate",
    "seed": "seed",
    "scope": "scope",
}


class Command(BaseCommand):
    # The sandbox plays the platform: it does not need the app's presets to be valid.
    requires_system_checks: list[str] = []
    help = (
        "Set fault injection for an app, e.g. --app app-demo --error-rate 0.3 --seed 42; "
        "--clear removes it. Options not given keep their current value. "
        "Saving restarts the app's seeded sequence."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app", required=True, help="api id of the registered app")
        parser.add_argument("--error-rate", type=float, help="share of calls answered 5xx")
        parser.add_argument(
            "--error-status",
            type=int,
            choices=range(500, 600),
            metavar="5XX",
            help="status of the 5xx answers (default: 500, 502, 503 or 504 by the draw)",
        )
        parser.add_argument("--rate-limit-rate", type=float, help="share answered 429")
        parser.add_argument("--retry-after", type=int, help="Retry-After of a 429, seconds")
        parser.add_argument("--latency-ms", type=int, help="delay added to every call")
        parser.add_argument("--drop-rate", type=float, help="share of dropped connections")
        parser.add_argument(
            "--gateway-timeout-rate",
            type=float,
            help="share of calls applied, then answered 504 (the answer lost)",
        )
        parser.add_argument("--seed", type=int, help="makes the sequence reproducible")
        parser.add_argument("--scope", choices=[s for s, _ in FaultConfig.SCOPES])
        parser.add_argument("--disable", action="store_true", help="keep but switch off")
        parser.add_argument("--clear", action="store_true", help="remove the app's faults")

    def handle(self, *args: Any, **options: Any) -> None:
        app = RegisteredApp.objects.filter(api_id=options["app"]).first()
        if app is None:
            raise CommandError(f"No registered app with api id {options['app']!r}")
        if options["clear"]:
            deleted, _ = FaultConfig.objects.filter(app=app).delete()
            self.stdout.write(f"Faults cleared for {app.api_id}" if deleted else "No faults set")
            return
        config = FaultConfig.objects.filter(app=app).first() or FaultConfig(app=app)
        for option, field in OPTION_FIELDS.items():
            if options[option] is not None:
                setattr(config, field, options[option])
        config.enabled = not options["disable"]
        try:
            validate_rates(
                error_rate=config.error_rate,
                rate_limit_rate=config.rate_limit_rate,
                drop_rate=config.drop_rate,
                gateway_timeout_rate=config.gateway_timeout_rate,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        config.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Faults for {app.api_id}: errors {config.error_rate:.0%}"
                f"{f' ({config.error_status})' if config.error_status else ''}, "
                f"429 {config.rate_limit_rate:.0%} (Retry-After {config.retry_after}s), "
                f"drops {config.drop_rate:.0%}, "
                f"504 after applying {config.gateway_timeout_rate:.0%}, "
                f"latency {config.latency_ms} ms, "
                f"seed {config.seed}, scope {config.scope}, "
                f"{'enabled' if config.enabled else 'disabled'}"
            )
        )
