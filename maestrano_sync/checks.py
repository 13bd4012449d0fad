"""System checks of the mapper registry: mistakes reported at start-up, not at the first import."""

from __future__ import annotations

from typing import Any

from django.core import checks

from maestrano_integration.connec_wire import MAX_BATCH_OPS

from .conf import sync_settings
from .registry import DependencyCycle, MapperRegistry, known_entities, registry


@checks.register("maestrano")
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


@checks.register("maestrano")
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
