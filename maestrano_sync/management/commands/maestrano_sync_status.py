"""Show the live sync's state: outbox/inbox depth, parked errors, last sync per entity, and
the recent sync runs (imports, pushes, notifications, reconciliations)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maestrano_accounts.models import Company
from maestrano_sync import history
from maestrano_sync.selectors import sync_status

COLUMNS = [
    ("entity", "entity"),
    ("mapped", "mapped"),
    ("outbox_pending", "pending"),
    ("outbox_parked", "parked"),
    ("last_import_at", "last import"),
    ("last_push_at", "last push"),
    ("last_notification_at", "last notification"),
    ("last_reconcile_at", "last reconcile"),
]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


class Command(BaseCommand):
    help = "Outbox/inbox depth, parked errors and last sync times per company and entity."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", help="group uid (cld-...); default: every company")
        parser.add_argument("--preset", help="with --company: the company's preset")
        parser.add_argument(
            "--history",
            type=int,
            default=10,
            help="recent sync runs listed per company (imports, pushes, notifications, "
            "reconciliations); 0 for none",
        )

    history_limit = 10

    def handle(self, *args: Any, **options: Any) -> None:
        self.history_limit = max(options["history"], 0)
        companies = Company.objects.order_by("preset", "group_uid")
        if options["company"]:
            companies = companies.filter(group_uid=options["company"])
            if options["preset"]:
                companies = companies.filter(preset=options["preset"])
            if not companies.exists():
                raise CommandError(f"No company with group uid {options['company']!r}")
        for company in companies:
            self.show(company)

    def show(self, company: Company) -> None:
        status = sync_status(company=company)
        overall = status.pop("*")
        self.stdout.write(
            self.style.MIGRATE_HEADING(f"{company.name} ({company.group_uid}, {company.preset})")
        )
        self.stdout.write(
            f"inbox: {overall['inbox_pending']} pending, {overall['inbox_failed']} failed; "
            f"last notification received: {_cell(overall['last_notification_received_at'])}"
        )
        rows = [[label for _, label in COLUMNS]]
        for entity, values in status.items():
            rows.append([entity, *(_cell(values[key]) for key, _ in COLUMNS[1:])])
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for index, row in enumerate(rows):
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            )
            if index == 0:
                self.stdout.write("  ".join("-" * width for width in widths))
        for entity, values in status.items():
            if values["outbox_parked"]:
                self.stdout.write(
                    self.style.WARNING(
                        f"{entity}: {values['outbox_parked']} parked; last error: "
                        f"{values['last_error'][:200]}"
                    )
                )
        entries = history.recent_history(company=company, limit=self.history_limit)
        if entries:
            self.stdout.write("recent runs:")
        for entry in entries:
            run = entry.run
            line = (
                f"  {_cell(run.started_at)}  {run.get_kind_display():<15} {run.status:<9} "
                f"{history.describe_counts(run) or '-'}"
            )
            if entry.repeats > 1:
                line += f" (the same {entry.repeats} times since {_cell(entry.first_started_at)})"
            if run.error:
                line += f"  ({run.error[:200]})"
            self.stdout.write(line)
        self.stdout.write("")
