"""Per-company sync settings: on/off, a direction per entity, the initial import's start date.

docs/sync.md ('Per-company sync settings') describes the behaviour; in short:

* **sync off** → nothing is pushed and nothing is applied. Local changes stay
  in the outbox and received notifications stay in the inbox; switching the
  sync on again pushes and applies them, in order.
* **a direction per entity**, within what its mapper allows
  (:func:`allowed_directions`): ``both``, ``import`` (Connec! → here),
  ``export`` (here → Connec!) or ``off``.

  - export off (``import`` or ``off``): local changes are still recorded in
    the outbox but *held* there, never sent; when export is switched on again
    they are pushed (coalesced per record, last change wins);
  - import off (``export`` or ``off``): notifications of that entity are
    *held* in the inbox, the newest version of each record only
    (:func:`maestrano_sync.inbox.hold_records`; a record's page says a version waits,
    and why), and the reconciliation skips it; when import is switched on again,
    the held versions are applied (:func:`maestrano_sync.inbox.release_held`) and the
    entity is imported again (:func:`maestrano_sync.reconcile.catch_up`), which brings
    whatever was missed meanwhile.
* **import since** a day: the import (first import, catch-up) fetches only the
  Connec! records changed since that day (00:00 UTC). Moving it earlier (or
  clearing it) imports the older records; moving it later deletes nothing.

Every change is recorded as a :class:`~maestrano_sync.models.SyncSettingsChange` (who,
when, ``{what: [before, after]}``). Read the settings with :func:`policy_for`
(one query; no row means the defaults), those of many companies with :func:`policies_for`
(one query), and change them with :func:`update_sync_settings` only.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from maestrano_accounts.models import Company
from maestrano_integration.times import platform_time_text

from . import scheduling
from .models import CompanySyncSettings, SyncSettingsChange
from .registry import NotRegistered, registry

logger = logging.getLogger(__name__)


class Direction(models.TextChoices):
    BOTH = "both", _("Both ways")
    IMPORT = "import", _("Import only (Connec! → this app)")
    EXPORT = "export", _("Export only (this app → Connec!)")
    OFF = "off", _("Off")


IMPORTING = frozenset({Direction.BOTH, Direction.IMPORT})
EXPORTING = frozenset({Direction.BOTH, Direction.EXPORT})


class SettingsRefused(ValueError):
    """A requested setting is not possible (unknown entity, direction its mapper refuses)."""


def mapper_direction(entity: str) -> Direction:
    """What ``entity``'s mapper allows at most (``off`` when no mapper is registered)."""
    try:
        directions = registry.for_entity(entity).directions
    except LookupError:
        return Direction.OFF
    if directions.import_enabled and directions.export_enabled:
        return Direction.BOTH
    if directions.import_enabled:
        return Direction.IMPORT
    if directions.export_enabled:
        return Direction.EXPORT
    return Direction.OFF


def allowed_directions(entity: str) -> list[Direction]:
    """The directions a company may choose for ``entity``: within what its mapper allows."""
    most = mapper_direction(entity)
    if most == Direction.BOTH:
        return [Direction.BOTH, Direction.IMPORT, Direction.EXPORT, Direction.OFF]
    if most == Direction.OFF:
        return [Direction.OFF]
    return [most, Direction.OFF]


@dataclass(frozen=True)
class SyncPolicy:
    """A company's settings as the sync reads them (defaults filled in)."""

    enabled: bool = True
    chosen: Mapping[str, str] = field(default_factory=dict)
    import_since: datetime.date | None = None

    def direction(self, entity: str) -> Direction:
        """The entity's direction (what its mapper allows unless the company chose less)."""
        most = mapper_direction(entity)
        chosen = self.chosen.get(entity)
        if chosen in allowed_directions(entity):
            return Direction(chosen)
        return most

    def imports(self, entity: str) -> bool:
        """Whether Connec! records of ``entity`` are applied now."""
        return self.enabled and self.direction(entity) in IMPORTING

    def exports(self, entity: str) -> bool:
        """Whether local changes of ``entity`` are pushed now."""
        return self.enabled and self.direction(entity) in EXPORTING

    def held_entities(self) -> set[str]:
        """Registered entities whose local changes wait in the outbox (export off)."""
        return {entity for entity in registry.entities() if not self.exports(entity)}

    def import_filter(self) -> str | None:
        """The Connec! ``$filter`` of an import limited by ``import_since`` (``None``: all)."""
        if self.import_since is None:
            return None
        start = datetime.datetime.combine(self.import_since, datetime.time.min, datetime.UTC)
        return f"updated_at ge '{platform_time_text(start)}'"


DEFAULT_POLICY = SyncPolicy()


_POLICY_FIELDS = ("enabled", "directions", "import_since")


def _policy(row: Mapping[str, Any]) -> SyncPolicy:
    directions = row["directions"] if isinstance(row["directions"], dict) else {}
    return SyncPolicy(
        enabled=row["enabled"], chosen=dict(directions), import_since=row["import_since"]
    )


def policy_for(*, company_id: Any) -> SyncPolicy:
    """The company's current settings (one query; the defaults when it has none)."""
    row = CompanySyncSettings.objects.filter(company_id=company_id).values(*_POLICY_FIELDS).first()
    return DEFAULT_POLICY if row is None else _policy(row)


def policies_for(*, company_ids: Iterable[Any]) -> dict[Any, SyncPolicy]:
    """{company id: its current settings} of ``company_ids`` (one query, none for no id)."""
    ids = set(company_ids)
    if not ids:
        return {}
    rows = CompanySyncSettings.objects.filter(company_id__in=ids).values(
        "company_id", *_POLICY_FIELDS
    )
    found = {row["company_id"]: _policy(row) for row in rows}
    return {company_id: found.get(company_id, DEFAULT_POLICY) for company_id in ids}


def is_sync_enabled(*, company_id: Any) -> bool:
    return policy_for(company_id=company_id).enabled


_UNCHANGED: Any = object()


def update_sync_settings(
    *,
    company: Company,
    changed_by: Any = None,
    enabled: bool | None = None,
    directions: Mapping[str, str] | None = None,
    import_since: datetime.date | None = _UNCHANGED,
) -> SyncSettingsChange | None:
    """Change what ``company`` syncs; effects are immediate (see the module doc).

    Only the arguments given change (``import_since=None`` clears the date).
    Returns the recorded change, or ``None`` when nothing changed. Raises
    :class:`SettingsRefused` for an unknown entity or a direction its mapper
    does not allow. The pushes, notifications and imports the change starts
    are enqueued once the transaction commits.
    """
    for entity, direction in (directions or {}).items():
        if entity not in registry.entities():
            raise SettingsRefused(f"No mapper is registered for Connec! entity {entity!r}")
        if direction not in allowed_directions(entity):
            allowed = ", ".join(allowed_directions(entity))
            raise SettingsRefused(
                f"{entity}: {direction!r} is not possible; its mapper allows {allowed}"
            )
    with transaction.atomic():
        row, _created = CompanySyncSettings.objects.select_for_update().get_or_create(
            company=company
        )
        before = SyncPolicy(
            enabled=row.enabled, chosen=dict(row.directions or {}), import_since=row.import_since
        )
        if enabled is not None:
            row.enabled = bool(enabled)
        if directions is not None:
            chosen = dict(row.directions or {})
            for entity, direction in directions.items():
                if direction == mapper_direction(entity):
                    chosen.pop(entity, None)  # the default: nothing to remember
                else:
                    chosen[entity] = str(direction)
            row.directions = chosen
        if import_since is not _UNCHANGED:
            row.import_since = import_since
        after = SyncPolicy(
            enabled=row.enabled, chosen=dict(row.directions), import_since=row.import_since
        )
        changes = _changes(before, after)
        if not changes:
            return None
        effects = effects_of(before=before, after=after)
        if effects.import_entities:
            # Kept until imported, so a lost task or a worker killed meanwhile loses nothing
            # (the beat's ``maestrano_sync.drain_all`` enqueues it again).
            row.pending_import = sorted(
                set(row.pending_import or []) | set(effects.import_entities)
            )
        row.save()
        change = SyncSettingsChange.objects.create(
            company=company,
            changed_by=changed_by if getattr(changed_by, "pk", None) else None,
            changed_by_name=_name_of(changed_by)[:255],
            changes=changes,
        )
        transaction.on_commit(lambda: _start_effects(company=company, effects=effects))
    logger.info(
        "Sync settings of %s changed: %s",
        company,
        changes,
        extra={"preset": company.preset, "group": company.group_uid},
    )
    return change


def _changes(before: SyncPolicy, after: SyncPolicy) -> dict[str, list[Any]]:
    changes: dict[str, list[Any]] = {}
    if before.enabled != after.enabled:
        changes["enabled"] = [before.enabled, after.enabled]
    for entity in registry.entities():
        old, new = before.direction(entity), after.direction(entity)
        if old != new:
            changes[f"direction.{entity}"] = [str(old), str(new)]
    if before.import_since != after.import_since:
        changes["import_since"] = [
            before.import_since.isoformat() if before.import_since else None,
            after.import_since.isoformat() if after.import_since else None,
        ]
    return changes


@dataclass(frozen=True)
class Effects:
    """What a settings change sets in motion."""

    drain: bool = False
    apply_inbox: bool = False
    import_entities: tuple[str, ...] = ()  # now pending imports (kept while the sync is off)
    catch_up: bool = False


def effects_of(*, before: SyncPolicy, after: SyncPolicy) -> Effects:
    """Push what export now allows, apply the kept notifications, import what import now gets.

    An entity is imported again when its import is switched on (it ignored
    notifications meanwhile) or when ``import_since`` moved earlier or was
    cleared (older records are wanted now). Chosen while the sync is off, the
    import waits until it is on. Switching the whole sync on imports nothing
    else: its notifications were kept.
    """
    if before.import_since is None:
        earlier = False
    elif after.import_since is None:
        earlier = True
    else:
        earlier = after.import_since < before.import_since
    wanted = tuple(
        entity
        for entity in registry.import_order()
        if after.direction(entity) in IMPORTING
        and (earlier or before.direction(entity) not in IMPORTING)
    )
    if not after.enabled:
        return Effects(import_entities=wanted)
    exported = {e for e in registry.entities() if after.exports(e) and not before.exports(e)}
    return Effects(
        drain=bool(exported) or not before.enabled,
        # The notifications kept while an import was off are applied now it is on.
        apply_inbox=not before.enabled or bool(wanted),
        import_entities=wanted,
        catch_up=bool(wanted) or not before.enabled,
    )


def _start_effects(*, company: Company, effects: Effects) -> None:
    if effects.catch_up:
        scheduling.start_now(scheduling.CATCH_UP, company.pk)
    if effects.apply_inbox:
        scheduling.start_now(scheduling.PROCESS_INBOX, company.pk)
    if effects.drain:
        scheduling.start_now(scheduling.DRAIN_OUTBOX, company.pk)


def pending_imports(*, company_id: Any) -> list[str]:
    """Entities whose import was switched on and that are not imported again yet."""
    row = CompanySyncSettings.objects.filter(company_id=company_id).values("pending_import").first()
    value = row["pending_import"] if row else []
    return (
        [entity for entity in value if isinstance(entity, str)] if isinstance(value, list) else []
    )


def import_done(*, company_id: Any, entity: str) -> None:
    """``entity`` is imported again: no longer pending."""
    with transaction.atomic():
        row = CompanySyncSettings.objects.select_for_update().filter(company_id=company_id).first()
        if row is not None and entity in (row.pending_import or []):
            row.pending_import = [e for e in row.pending_import if e != entity]
            row.save(update_fields=["pending_import", "updated_at"])


def companies_with_pending_imports() -> list[Any]:
    return [
        row.company_id
        for row in CompanySyncSettings.objects.filter(enabled=True).only(
            "company_id", "pending_import"
        )
        if row.pending_import
    ]


def recent_changes(*, company: Company, limit: int = 20) -> list[SyncSettingsChange]:
    return list(
        SyncSettingsChange.objects.filter(company=company).select_related("changed_by")[:limit]
    )


def _name_of(user: Any) -> str:
    """How a person is named in the history: their full name, else their login name."""
    if user is None:
        return ""
    full_name = getattr(user, "get_full_name", None)
    return (full_name() if callable(full_name) else "") or str(user)


def change_lines(change: SyncSettingsChange) -> list[str]:
    """A recorded change in words: ``Sync: on → off``, ``People: Both ways → Import only``."""
    if not isinstance(change.changes, dict):  # written by update_sync_settings: always a dict
        return [str(change.changes)]
    lines = []
    for name, values in change.changes.items():
        before, after = [*values, None, None][:2] if isinstance(values, list) else (None, None)
        if name == "enabled":
            label, before, after = gettext("Sync"), _on_off(before), _on_off(after)
        elif name.startswith("direction."):
            entity = name.removeprefix("direction.")
            label, before, after = _entity_label(entity), _direction(before), _direction(after)
        elif name == "import_since":
            label = gettext("First import from")
        else:
            label = name
        lines.append(
            gettext("%(setting)s: %(before)s → %(after)s")
            % {
                "setting": label,
                "before": before if before not in (None, "") else "—",
                "after": after if after not in (None, "") else "—",
            }
        )
    return lines


def _on_off(value: Any) -> str | None:
    if isinstance(value, bool):
        return pgettext("sync switched", "on") if value else pgettext("sync switched", "off")
    return None if value is None else str(value)


def _direction(value: Any) -> str | None:
    try:
        return str(Direction(value).label)
    except ValueError:
        return None if value is None else str(value)


def _entity_label(entity: str) -> str:
    try:
        return str(registry.for_entity(entity).model._meta.verbose_name_plural).capitalize()
    except NotRegistered:
        return entity
