"""Fill a sandbox group with deterministic demo Connec! data, in bulk."""

from __future__ import annotations

import time
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from maestrano_sandbox.connec.seed import ensure_group, seed_group
from maestrano_sandbox.models import RegisteredApp


class Command(BaseCommand):
    # The sandbox plays the platform: it does not need the app's presets to be valid.
    requires_system_checks: list[str] = []
    help = (
        "Add N demo records (20% organizations, 40% people, 20% items, 20% invoices) to a group, "
        "creating the group if missing: --group cld-demo --records 1000 [--seed 1] [--app ID]."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group", default="cld-demo", help="group uid (default cld-demo)")
        parser.add_argument("--records", type=int, default=1000, help="how many records")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--app",
            action="append",
            default=[],
            help="api id of an app to add to the group (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["records"] < 0:
            raise CommandError("--records must be positive")
        apps = []
        for api_id in options["app"]:
            app = RegisteredApp.objects.filter(api_id=api_id).first()
            if app is None:
                raise CommandError(f"No registered app with api id {api_id!r}")
            apps.append(app)
        started = time.perf_counter()
        group, created = ensure_group(group_uid=options["group"])
        if apps:
            group.apps.add(*apps)
        with tqdm(
            total=options["records"],
            unit="rec",
            desc=f"Seeding {group.uid}",
            disable=options["verbosity"] == 0,
            # The stream under the command's wrapper, which would end each of tqdm's updates
            # with a line break (the stubs know the wrapper's attributes only).
            file=cast(TextIO, self.stderr._out),
        ) as bar:
            result = seed_group(
                group=group, total=options["records"], seed=options["seed"], progress=bar.update
            )
        elapsed = time.perf_counter() - started
        counts = ", ".join(f"{entity} {count}" for entity, count in result.counts.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Created' if created else 'Updated'} group {group.uid}: "
                f"{sum(result.counts.values())} records ({counts}) in {elapsed:.1f}s"
            )
        )
