"""The mapper registry: which local model syncs with which Connec! entity.

Used like ``admin.site.register``::

    from maestrano_sync import registry

    @registry.register(Organization)
    class OrganizationMapper(Mapper):
        entity = "organizations"
        ...

Register from your app's ``AppConfig.ready()`` (import a ``mappers`` module).
One mapper per model and per entity. :meth:`MapperRegistry.import_order`
sorts entities so that referenced ones come first (organizations → people →
items → invoices); :mod:`maestrano_sync.checks` reports mistakes at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from .conf import sync_settings

if TYPE_CHECKING:
    from django.db import models

    from .mappers import Mapper

MapperT = TypeVar("MapperT", bound="type[Mapper]")

#: Connec! API v2 entities (plural, as in the URL). Adopters add others with
#: ``MAESTRANO["SYNC"]["EXTRA_ENTITIES"]``.
CONNEC_ENTITIES: frozenset[str] = frozenset(
    {
        "accounts",
        "activities",
        "app_users",
        "bills",
        "company",
        "credit_notes",
        "employees",
        "events",
        "event_orders",
        "inventory_movements",
        "invoices",
        "items",
        "journals",
        "opportunities",
        "organizations",
        "payments",
        "pay_items",
        "pay_runs",
        "pay_schedules",
        "people",
        "projects",
        "purchase_orders",
        "quotes",
        "sales_orders",
        "tax_codes",
        "tax_rates",
        "time_activities",
        "time_sheets",
        "venues",
        "warehouses",
        "work_locations",
    }
)


def known_entities() -> frozenset[str]:
    return CONNEC_ENTITIES | frozenset(sync_settings().extra_entities or ())


class AlreadyRegistered(Exception):
    pass


class NotRegistered(LookupError):
    pass


class DependencyCycle(ValueError):
    pass


class MapperRegistry:
    """Mappers by model and by Connec! entity."""

    def __init__(self) -> None:
        self._by_model: dict[type[models.Model], Mapper] = {}
        self._by_entity: dict[str, Mapper] = {}
        self._listeners: list[Callable[[Mapper], None]] = []

    def on_register(self, listener: Callable[[Mapper], None]) -> None:
        """Call ``listener(mapper)`` for every mapper registered, now and later."""
        self._listeners.append(listener)
        for mapper in list(self._by_model.values()):
            listener(mapper)

    def register(self, model: type[models.Model]) -> Callable[[MapperT], MapperT]:
        """Class decorator: ``@registry.register(Person)`` on a ``Mapper`` subclass."""

        def decorator(mapper_class: MapperT) -> MapperT:
            self.register_mapper(model, mapper_class)
            return mapper_class

        return decorator

    def register_mapper(self, model: type[models.Model], mapper_class: type[Mapper]) -> Mapper:
        if model in self._by_model:
            raise AlreadyRegistered(f"{model._meta.label} already has a mapper")
        entity = getattr(mapper_class, "entity", None)
        if not entity:
            raise ValueError(f"{mapper_class.__name__} must declare `entity`")
        if entity in self._by_entity:
            raise AlreadyRegistered(
                f"Connec! entity {entity!r} is already mapped by "
                f"{type(self._by_entity[entity]).__name__}"
            )
        mapper_class.model = model
        mapper = mapper_class()
        self._by_model[model] = mapper
        self._by_entity[entity] = mapper
        for listener in self._listeners:
            listener(mapper)
        return mapper

    def unregister(self, model: type[models.Model]) -> None:
        mapper = self._by_model.pop(model, None)
        if mapper is None:
            raise NotRegistered(f"{model._meta.label} has no mapper")
        self._by_entity.pop(mapper.entity, None)

    def is_registered(self, model: type[models.Model]) -> bool:
        return model in self._by_model

    def for_model(self, model: type[models.Model]) -> Mapper:
        try:
            return self._by_model[model]
        except KeyError:
            raise NotRegistered(f"{model._meta.label} has no mapper") from None

    def for_entity(self, entity: str) -> Mapper:
        try:
            return self._by_entity[entity]
        except KeyError:
            raise NotRegistered(f"No mapper for Connec! entity {entity!r}") from None

    def mappers(self) -> list[Mapper]:
        return list(self._by_entity.values())

    def entities(self) -> list[str]:
        return list(self._by_entity)

    def import_order(self, entities: Iterable[str] | None = None) -> list[str]:
        """Entities with import enabled, referenced entities first (stable, deterministic).

        ``entities`` restricts the result (its dependencies are not added: the
        caller asked for exactly these).
        """
        wanted = set(entities) if entities is not None else None
        order = [
            entity
            for entity in self.dependency_order()
            if self._by_entity[entity].directions.import_enabled
            and (wanted is None or entity in wanted)
        ]
        return order

    def dependency_order(self) -> list[str]:
        """Every registered entity, dependencies first; raises :class:`DependencyCycle`."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(entity: str, path: list[str]) -> None:
            if state.get(entity) == "done":
                return
            if state.get(entity) == "visiting":
                cycle = [*path[path.index(entity) :], entity]
                raise DependencyCycle(" → ".join(cycle))
            state[entity] = "visiting"
            for dependency in sorted(self._by_entity[entity].dependencies()):
                if dependency in self._by_entity:
                    visit(dependency, [*path, entity])
            state[entity] = "done"
            order.append(entity)

        for entity in self._by_entity:
            visit(entity, [])
        return order


#: The registry every app registers with.
registry = MapperRegistry()

register = registry.register
for_model = registry.for_model
for_entity = registry.for_entity
