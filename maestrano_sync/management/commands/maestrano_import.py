"""``manage.py maestrano_import --company cld-xxxx``: run (or resume) a company's initial import."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from maestrano_accounts.models import Company
from maestrano_integration.conf import ImproperlyConfiguredPreset, get_preset
from maestrano_sync.importer import ImportFailed, run_import
from maestrano_sync.models import SyncRunEntity
from maestrano_sync.registry import registry


class Command(BaseCommand):
    help = (
        "Import a company's Connec! data now, in this process, with a progress bar. "
        "Resumes the company's unfinished import unless --restart."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--company", required=True, help="The group uid (cld-...)")
        parser.add_argument("--preset", default=None, help="Marketplace preset (default preset)")
        parser.add_argument(
            "--entity",
            action="append",
            dest="entities",
            help="Only this Connec! entity (repeatable), e.g. --entity people",
        )
        parser.add_argument("--restart", action="store_true", help="Start over from page 1")
        parser.add_argument("--page-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            preset = get_preset(options["preset"])
        except ImproperlyConfiguredPreset as error:
            raise CommandError(str(error)) from None
        company = Company.objects.filter(preset=preset.name, group_uid=options["company"]).first()
        if company is None:
            raise CommandError(
                f"No company with group uid {options['company']!r} in preset {preset.name!r}"
            )
        entities = options["entities"]
        if entities:
            unknown = sorted(set(entities) - set(registry.import_order()))
            if unknown:
                raise CommandError(
                    f"No import-enabled mapper for {', '.join(unknown)}; "
                    f"choose among {', '.join(registry.import_order())}"
                )
        bars: dict[str, tqdm] = {}

        def progress(run_entity: SyncRunEntity) -> None:
            bar = bars.get(run_entity.entity)
            if bar is None:
                bar = bars[run_entity.entity] = tqdm(
                    desc=run_entity.entity, unit="rec", file=self.stderr, leave=True
                )
            bar.total = run_entity.total
            bar.n = run_entity.next_skip
            bar.set_postfix(
                created=run_entity.created, updated=run_entity.updated, failed=run_entity.failed
            )
            bar.refresh()
            if run_entity.done:
                bar.close()

        try:
            run = run_import(
                company=company,
                entities=entities,
                restart=options["restart"],
                page_size=options["page_size"],
                progress=progress,
            )
        except ImportFailed as error:
            raise CommandError(f"Import run {error.run.pk} failed: {error.run.error}") from None
        finally:
            for bar in bars.values():
                bar.close()
        for entity in run.entities.order_by("position"):
            self.stdout.write(
                f"{entity.entity}: {entity.created} created, {entity.updated} updated, "
                f"{entity.skipped} unchanged, {entity.deleted} deleted in Connec!, "
                f"{entity.failed} failed"
            )
        self.stdout.write(f"Import run {run.pk}: {run.status}")
