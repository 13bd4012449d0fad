"""Create or update a Connec! record as if another application did; the group's apps are
notified before the command exits (it delivers and waits, ``--wait``)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maestrano_integration import strict_input
from maestrano_sandbox.connec.api import Operation, run_and_notify
from maestrano_sandbox.connec.errors import ConnecApiError
from maestrano_sandbox.connec.notifications import deliver_pending
from maestrano_sandbox.models import NotificationDelivery, RegisteredApp

#: Enough for the default retries (1, 2, 4, 8 and 16 s apart) of an app that is briefly down.
DEFAULT_WAIT_SECONDS = 40.0


class Command(BaseCommand):
    # The sandbox plays the platform: it does not need the app's presets to be valid.
    requires_system_checks: list[str] = []
    help = (
        "Write a Connec! record from the sandbox, e.g. --group cld-demo --entity people "
        """--data '{"first_name": "Ada"}' [--id <connec id> to update]. """
        "By default (or with --as-other-app) the write comes from no registered app, so every "
        "app of the group is notified; --as-app API_ID writes as that app (not notified). "
        "The command then delivers the notifications itself and waits for them (retries "
        "included) up to --wait seconds, so they reach the apps before it exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group", required=True, help="group uid, e.g. cld-demo")
        parser.add_argument("--entity", required=True, help="organizations, people, items...")
        parser.add_argument("--data", required=True, help="the record's fields, as JSON")
        parser.add_argument("--id", help="Connec! id of the record to update (PUT)")
        writer = parser.add_mutually_exclusive_group()
        writer.add_argument("--as-app", help="api id of the app the write is made as")
        writer.add_argument("--as-other-app", action="store_true", help="the default")
        parser.add_argument(
            "--wait",
            type=float,
            default=DEFAULT_WAIT_SECONDS,
            help="seconds to wait for the notifications to be delivered (default "
            f"{DEFAULT_WAIT_SECONDS:g}; 0: leave them pending for the running server)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            fields = strict_input.loads(options["data"])
        except strict_input.InputRefused as error:
            raise CommandError(f"--data is refused: {error}") from None
        app = None
        if options["as_app"]:
            app = RegisteredApp.objects.filter(api_id=options["as_app"]).first()
            if app is None:
                raise CommandError(f"No registered app with api id {options['as_app']!r}")
        operation = Operation(
            method="PUT" if options["id"] else "POST",
            group_uid=options["group"],
            entity=options["entity"],
            record_id=options["id"],
            body={options["entity"]: fields},
        )
        try:
            outcome = run_and_notify(operation, app=app)
        except ConnecApiError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(json.dumps(outcome.body, indent=2))
        self._deliver(outcome.deliveries, wait=max(options["wait"], 0.0))

    def _deliver(self, ids: list[int], *, wait: float) -> None:
        """Deliver this write's notifications now (this process has no background thread
        that outlives it) and say, on stderr, what became of each."""
        if not ids:
            return
        if wait:
            deliver_pending(timeout=wait, ids=ids)
        deliveries = NotificationDelivery.objects.filter(pk__in=ids).select_related("app")
        for delivery in deliveries.order_by("pk"):
            detail = f" ({delivery.last_error[:200]})" if delivery.last_error else ""
            self.stderr.write(
                f"Notification {delivery.pk} to {delivery.app.api_id}: {delivery.status}"
                f" after {delivery.attempts} attempt(s){detail}"
            )
