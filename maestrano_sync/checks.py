"""System checks of the mapper registry: mistakes reported at start-up, not at the first import."""

from __future__ import annotations

from typing import Any

from django.core import checks

from maestrano_integration.checks import preset_setting_hint, reads_settings
from maestrano_integration.conf import all_presets
from maestrano_integration.connec_wire import MAX_BATCH_OPS

from .conf import sync_settings
from .keys import keyed_on_insert
from .mappers import Mapper
from .registry import DependencyCycle, MapperRegistry, known_entities, registry


@checks.register("maestrano")
@reads_settings
def check_mappers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return check_registry(registry)


def check_registry(registry: MapperRegistry) -> list[checks.CheckMessage]:
    """Every problem of ``registry``'s mappers (the global one at start-up)."""
    messages: list[checks.CheckMessage] = []
    entities = known_entities()
    registered = set(registry.entities())
    for mapper in registry.mappers():
        label = type(mapper).__name__
        if mapper.entity not in entities:
            messages.append(
                checks.Error(
                    f"{label} maps unknown Connec! entity {mapper.entity!r}.",
                    hint="Use a Connec! API v2 entity name (plural, e.g. 'people'), or add it to "
                    "MAESTRANO['SYNC']['EXTRA_ENTITIES'].",
                    obj=type(mapper),
                    id="maestrano_sync.E001",
                )
            )
        for mapping in (type(mapper), *mapper.children):
            for problem in mapping.check_declarations():
                messages.append(
                    checks.Error(
                        f"{mapping.__name__}: {problem}.",
                        hint="Map only concrete fields of the model (see docs/sync.md).",
                        obj=mapping,
                        id="maestrano_sync.E002",
                    )
                )
            for local_name, (connec_field, entity) in mapping.references.items():
                if entity not in registered:
                    messages.append(
                        checks.Error(
                            f"{mapping.__name__}.references[{local_name!r}] points at Connec! "
                            f"entity {entity!r} ({connec_field}), which has no registered mapper.",
                            hint="Register a mapper for that entity, or drop the reference.",
                            obj=mapping,
                            id="maestrano_sync.E003",
                        )
                    )
        for child in mapper.children:
            if not getattr(child, "path", None) or not getattr(child, "parent_field", None):
                messages.append(
                    checks.Error(
                        f"{child.__name__} must declare `path` and `parent_field`.",
                        obj=child,
                        id="maestrano_sync.E005",
                    )
                )
        messages.extend(_key_messages(mapper))
        for dependency in sorted(set(mapper.depends_on) - registered):
            messages.append(
                checks.Warning(
                    f"{label}.depends_on names {dependency!r}, which has no registered mapper.",
                    obj=type(mapper),
                    id="maestrano_sync.W001",
                )
            )
    try:
        registry.dependency_order()
    except DependencyCycle as cycle:
        messages.append(
            checks.Error(
                f"Mapper dependencies form a cycle: {cycle}.",
                hint="Entities are imported in dependency order; break the cycle "
                "(depends_on or a reference).",
                id="maestrano_sync.E004",
            )
        )
    return messages


def _key_messages(mapper: Mapper) -> list[checks.CheckMessage]:
    """The primary keys the import cannot give new rows, or would have to change."""
    if not mapper.directions.import_enabled:
        return []
    messages: list[checks.CheckMessage] = []
    for mapping in (type(mapper), *mapper.children):
        key = mapping.model._meta.pk
        name = f"{mapping.model._meta.label}.{key.name}"
        if {key.name, key.attname} & {*mapping.fields, *mapping.references}:
            messages.append(
                checks.Error(
                    f"{mapping.__name__} maps {name}, the primary key: the sync knows each "
                    "local row by its key, which a change in Connec! would then change.",
                    hint="Map the Connec! value to a field of its own (unique=True if it "
                    "identifies a row) and keep a key of yours (an AutoField, or a UUIDField "
                    "with default=uuid.uuid4); to send the key to Connec!, add it in "
                    "to_connec() (docs/sync.md).",
                    obj=mapping,
                    id="maestrano_sync.E006",
                )
            )
        elif not keyed_on_insert(key) and not _gives_keys(mapping):
            messages.append(
                checks.Warning(
                    f"{mapping.__name__}: {name}, the primary key, has no default: the "
                    "import would give its new rows no key (the first one saved with an "
                    "empty key, the others refused).",
                    hint="Give the field a default (default=uuid.uuid4, or a function of "
                    "yours), or give each new row its key in the mapper's new_instance() "
                    "(docs/sync.md).",
                    obj=mapping,
                    id="maestrano_sync.W003",
                )
            )
    return messages


def _gives_keys(mapping: type[Any]) -> bool:
    """Whether the mapping's own code may give new rows their key (it cannot be told)."""
    own_to_local = issubclass(mapping, Mapper) and mapping.to_local is not Mapper.to_local
    return mapping.has_own_new_instance() or own_to_local


@checks.register("maestrano")
@reads_settings
def check_sync_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["SYNC"]`` values Connec! would refuse."""
    values = sync_settings()
    if values.ops_per_batch == values.batch_size:
        return []
    return [
        checks.Warning(
            f"MAESTRANO['SYNC']['BATCH_SIZE'] is {values.batch_size}: Connec! takes 1 to "
            f"{MAX_BATCH_OPS} ops per batch request, so pushes send {values.ops_per_batch} "
            "per request.",
            hint=f"Set it between 1 and {MAX_BATCH_OPS} (default 100).",
            id="maestrano_sync.W002",
        )
    ]


@checks.register("maestrano")
@reads_settings
def check_subscriptions(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Entities a mapper imports that a preset does not subscribe to.

    Records of such an entity are never applied after the initial import: the platform
    sends no notification of it (or one that is ignored), and reconciliation skips it
    (:func:`maestrano_sync.inbox_plan.entity_never_applied`)."""
    try:
        imported = registry.import_order()
    except DependencyCycle:  # maestrano_sync.E004 says so
        imported = sorted(m.entity for m in registry.mappers() if m.directions.import_enabled)
    messages: list[checks.CheckMessage] = []
    for preset in all_presets():
        missing = sorted(entity for entity in imported if not preset.subscribes_to(entity))
        if not missing:
            continue
        # What it imports, then what else it already subscribes to.
        wanted = list(imported)
        wanted += sorted(e for e, on in preset.subscriptions.items() if on and e not in wanted)
        messages.append(
            checks.Warning(
                f"Maestrano preset {preset.name!r} does not subscribe to "
                f"{', '.join(repr(e) for e in missing)}, which your mappers import: after "
                "the initial import, no change made in Connec! reaches this app (its "
                "notifications are ignored, reconciliation skips it).",
                hint=f"Subscribe to {','.join(wanted)}: "
                + preset_setting_hint(
                    preset.name, "webhook.connec.subscriptions", is_default=preset.is_default
                )
                + " Then refresh the app's metadata at the marketplace (docs/sync.md).",
                id="maestrano_sync.W004",
            )
        )
    return messages
