"""Mappers: how one local model maps to one Connec! entity, both ways.

A mapper is declarative, like a ``ModelAdmin``::

    from maestrano_sync import registry
    from maestrano_sync.mappers import Mapper

    @registry.register(Person)
    class PersonMapper(Mapper):
        entity = "people"
        fields = {"first_name": "first_name", "email": "email.address"}
        references = {"organization": ("organization_id", "organizations")}

``fields`` maps a local field name to a dotted Connec! path (read on import,
written on export). ``references`` maps a local foreign key to the Connec!
field holding the referenced record's id and that record's entity; ids are
translated through the IdMap, never stored raw. Child collections (invoice
lines) are :class:`ChildMapping` classes listed in ``children``; each child row keeps
its Connec! id both ways (:mod:`maestrano_sync.children`).

Override :meth:`Mapper.to_local` / :meth:`Mapper.to_connec` for anything the
declarations cannot say; raise :class:`MappingError` to reject one record.

Connec! values and their conversion to model fields live in :mod:`maestrano_sync.values`
(``MappingError``, ``connec_id_of``, ``connec_time``, ``to_local_value`` ...), importable
from here as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models import signals

from maestrano_integration.model_fields import field_attname

from . import tenancy
from .field_apply import MISSING, Applier, make_applier
from .values import (
    MappingError,
    connec_id_of,
    connec_time,
    connec_time_or_none,
    record_connec_id,
    record_realms,
    to_connec_value,
    to_local_value,
)

# The names adopters import from here, with those of maestrano_sync.values.
__all__ = [
    "BOTH",
    "EXPORT_ONLY",
    "IMPORT_ONLY",
    "ChildMapping",
    "Directions",
    "Mapper",
    "MappingError",
    "ReferenceResolver",
    "UnknownReference",
    "connec_id_of",
    "connec_time",
    "connec_time_or_none",
    "get_path",
    "record_connec_id",
    "record_realms",
    "set_path",
    "to_connec_value",
    "to_local_value",
]

_MISSING = MISSING
#: The apply function of each mapping class, with the declarations it was made from.
_APPLIERS: dict[type, tuple[dict, dict, Applier]] = {}


class UnknownReference(MappingError):
    """A reference points at a Connec! record we have not imported (no IdMap entry)."""


@dataclass(frozen=True)
class Directions:
    """Which data flows are on for an entity: docs/protocol.md, 'Data flow directions'.

    Named from our application's side: ``import_enabled`` pulls Connec! records
    into local models (initial import, notifications), ``export_enabled`` pushes
    local changes to Connec!.
    """

    import_enabled: bool = True
    export_enabled: bool = True


BOTH = Directions()
IMPORT_ONLY = Directions(import_enabled=True, export_enabled=False)
EXPORT_ONLY = Directions(import_enabled=False, export_enabled=True)


# --- dotted paths ---------------------------------------------------------------


def get_path(data: Mapping[str, Any], path: str, default: Any = _MISSING) -> Any:
    """``get_path({"email": {"address": "a@b"}}, "email.address") == "a@b"``."""
    current: Any = data
    for part in path.split("."):
        if (type(current) is not dict and not isinstance(current, Mapping)) or part not in current:
            return default  # (a dict first: the Mapping ABC check is slow)
        current = current[part]
    return current


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted path, creating the intermediate objects."""
    parts = path.split(".")
    current = data
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


# --- references -----------------------------------------------------------------


class ReferenceResolver:
    """Connec! ids → local primary keys (import) and back (export), preloaded in bulk.

    The importer fills it with one IdMap query per referenced entity and page;
    mappers call :meth:`local_pk` / :meth:`connec_id` and never query IdMap.
    """

    def __init__(
        self,
        *,
        local_pks: Mapping[str, Mapping[str, Any]] | None = None,
        connec_ids: Mapping[str, Mapping[Any, str]] | None = None,
    ) -> None:
        self._local_pks = {entity: dict(ids) for entity, ids in (local_pks or {}).items()}
        self._connec_ids = {entity: dict(ids) for entity, ids in (connec_ids or {}).items()}

    def local_pk(self, entity: str, connec_id: str) -> Any:
        try:
            return self._local_pks[entity][connec_id]
        except KeyError:
            raise UnknownReference(f"unknown {entity} reference {connec_id!r}") from None

    def connec_id(self, entity: str, local_pk: Any) -> str | None:
        return self._connec_ids.get(entity, {}).get(str(local_pk))

    def add_local(self, entity: str, connec_id: str, local_pk: Any) -> None:
        self._local_pks.setdefault(entity, {})[connec_id] = local_pk
        self._connec_ids.setdefault(entity, {})[str(local_pk)] = connec_id


# --- declarative mappings ------------------------------------------------------------


class _Mapping:
    """What mappers and child mappings share: fields, references, conversions."""

    model: ClassVar[type[models.Model]]
    #: {local field name: dotted Connec! path}
    fields: ClassVar[dict[str, str]] = {}
    #: {local foreign key name: (Connec! id field, referenced Connec! entity)}
    references: ClassVar[dict[str, tuple[str, str]]] = {}
    #: How a row reaches its ``maestrano_accounts.Company``: a foreign key (``"company"``) or a
    #: lookup path through the project's own tenant model
    #: (``"account__maestrano_company"``). See :mod:`maestrano_sync.tenancy`.
    tenant_field: ClassVar[str] = "company"

    @classmethod
    def tenant(cls) -> tenancy.TenantPath:
        return tenancy.resolve(cls.model, cls.tenant_field)

    @classmethod
    def for_company(cls, company: Any) -> models.QuerySet:
        """The rows of ``company``: every tenant-scoped query starts here."""
        return cls.model._default_manager.filter(**{cls.tenant_field: company})

    @classmethod
    def company_id_of(cls, instance: models.Model) -> Any:
        """The company id of ``instance`` (a changed row to push)."""
        return tenancy.company_id_of(cls.tenant(), instance)

    @classmethod
    def tenant_object_for(cls, company: Any) -> models.Model:
        """What new rows of ``company`` point their tenant field's first hop at.

        Override when your tenant model cannot be found from the company by the
        path alone.
        """
        return tenancy.tenant_object_for(cls.tenant(), company)

    @classmethod
    def new_instance(cls, company: Any, *, tenant_object: Any = None) -> models.Model:
        """An unsaved row of ``company`` (import).

        Pass ``tenant_object`` (from :meth:`tenant_object_for`) when making many rows,
        so that a tenant path is resolved once, not once per row.
        """
        if tenant_object is None:
            tenant_object = cls.tenant_object_for(company)
        return cls.model(**{cls.tenant().first.name: tenant_object})

    @classmethod
    def has_own_new_instance(cls) -> bool:
        """Whether the mapping overrides :meth:`new_instance`."""
        own = _Mapping.new_instance.__func__  # type: ignore[attr-defined]  # a bound classmethod
        return getattr(cls.new_instance, "__func__", None) is not own

    @classmethod
    def instance_factory(
        cls, company: Any, *, tenant_object: Any = None
    ) -> Callable[[], models.Model]:
        """Makes new rows of ``company`` as :meth:`new_instance` does, fast (import pages).

        One row is built the usual way (its tenant set through the foreign key's
        descriptor: type and router checks, database); without ``pre_init`` /
        ``post_init`` receivers for the model, every further row is a copy of it,
        its callable defaults evaluated anew (``Model.__init__`` took most of a
        row's mapping time). With such receivers, or a :meth:`new_instance` of the
        mapping's own (which may give each row a value of its own: a key, a number),
        every row is built the usual way.
        """
        model = cls.model
        field = cls.tenant().first
        if tenant_object is None:
            tenant_object = cls.tenant_object_for(company)
        if (
            cls.has_own_new_instance()
            or signals.pre_init.has_listeners(model)
            or signals.post_init.has_listeners(model)
        ):
            return lambda: cls.new_instance(company, tenant_object=tenant_object)
        template = cls.new_instance(company, tenant_object=tenant_object)
        db = template._state.db
        values = {name: value for name, value in vars(template).items() if name != "_state"}
        fresh = [
            f
            for f in model._meta.concrete_fields
            if f.has_default() and callable(f.default) and f.attname in values
        ]

        def copy_instance() -> models.Model:
            instance = model.__new__(model)
            state = vars(instance)
            state.update(values)
            for f in fresh:
                state[f.attname] = f.get_default()
            instance._state = models.base.ModelState()
            instance._state.db = db
            field.set_cached_value(instance, tenant_object)
            return instance

        return copy_instance

    @classmethod
    def local_field_names(cls) -> list[str]:
        """Concrete field names the mapping writes (for ``bulk_update``)."""
        names = list(cls.fields)
        for name in cls.references:
            names.append(field_attname(cls.model, name))
        return names

    @classmethod
    def referenced_ids(cls, data: Mapping[str, Any]) -> dict[str, set[str]]:
        """{entity: connec ids} this record references (for one bulk IdMap query per page)."""
        wanted: dict[str, set[str]] = {}
        for connec_field, entity in cls.references.values():
            try:
                connec_id = connec_id_of(get_path(data, connec_field, None), record=data)
            except MappingError:
                continue
            if connec_id:
                wanted.setdefault(entity, set()).add(connec_id)
        return wanted

    @classmethod
    def apply_fields(
        cls, data: Mapping[str, Any], instance: models.Model, references: ReferenceResolver
    ) -> None:
        """Set mapped fields and references from ``data`` on ``instance`` (import).

        Raises :class:`MappingError` naming every refused value. The work is done by a
        function made once per mapping class from its declarations
        (:mod:`maestrano_sync.field_apply`), made again if they change.
        """
        made = _APPLIERS.get(cls)
        if made is None or made[0] != cls.fields or made[1] != cls.references:
            made = (
                dict(cls.fields),
                dict(cls.references),
                make_applier(cls.model, cls.fields, cls.references),
            )
            _APPLIERS[cls] = made
        made[2](data, instance, references)

    @classmethod
    def export_fields(cls, instance: models.Model, references: ReferenceResolver) -> dict:
        """Mapped fields and references of ``instance`` as a Connec! payload (export)."""
        data: dict[str, Any] = {}
        for local_name, path in cls.fields.items():
            value = getattr(instance, field_attname(cls.model, local_name))
            set_path(data, path, to_connec_value(value))
        for local_name, (connec_field, entity) in cls.references.items():
            local_pk = getattr(instance, field_attname(cls.model, local_name))
            if local_pk is not None:
                connec_id = references.connec_id(entity, local_pk)
                if connec_id is not None:
                    set_path(data, connec_field, connec_id)
        return data

    @classmethod
    def check_declarations(cls) -> list[str]:
        """Problems with the declarations (used by the system checks)."""
        problems: list[str] = []
        opts = cls.model._meta
        try:
            cls.tenant()
        except ImproperlyConfigured as error:
            problems.append(str(error))
        for local_name in [*cls.fields, *cls.references]:
            try:
                field = opts.get_field(local_name)
            except FieldDoesNotExist:
                problems.append(f"{opts.label} has no field {local_name!r}")
                continue
            if not field.concrete:
                problems.append(f"{opts.label}.{local_name} is not a concrete field")
        for local_name in cls.references:
            try:
                field = opts.get_field(local_name)
            except FieldDoesNotExist:
                continue
            if not field.many_to_one:
                problems.append(f"{opts.label}.{local_name} is a reference but not a ForeignKey")
        return problems


class ChildMapping(_Mapping):
    """Records nested in a parent record (invoice ``lines``), stored in their own model.

    ``path`` is the Connec! list holding them, ``parent_field`` the local foreign
    key to the parent. Each row is linked to its sub-record's Connec! id
    (:mod:`maestrano_sync.children`): imports update rows in place, pushes send each line's id.
    """

    path: ClassVar[str]
    parent_field: ClassVar[str]
    #: Local field numbering the children, filled from their position when absent.
    position_field: ClassVar[str | None] = None

    @classmethod
    def check_declarations(cls) -> list[str]:
        problems = super().check_declarations()
        for name in (getattr(cls, "parent_field", None), cls.position_field):
            if name:
                try:
                    cls.model._meta.get_field(name)
                except FieldDoesNotExist:
                    problems.append(f"{cls.model._meta.label} has no field {name!r}")
        return problems


class Mapper(_Mapping):
    """One local model ↔ one Connec! entity. Subclass and register with
    ``maestrano_sync.registry``."""

    #: Connec! entity (plural, as in the URL): ``organizations``, ``people``...
    entity: ClassVar[str]
    directions: ClassVar[Directions] = BOTH
    #: Entities to import before this one, on top of those its references imply.
    depends_on: ClassVar[tuple[str, ...]] = ()
    children: ClassVar[tuple[type[ChildMapping], ...]] = ()
    #: Connec! paths (among ``fields``' values) that identify a record, e.g.
    #: ``("email.address",)``: the first push of a record asks Connec! to merge it into
    #: the record with equal values instead of creating a duplicate
    #: (docs/protocol.md, 'Smart merging').
    matching_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_declarations(cls) -> list[str]:
        problems = super().check_declarations()
        if isinstance(cls.matching_fields, str):
            problems.append(f"{cls.__name__}.matching_fields must be a tuple of Connec! paths")
            return problems
        mapped = set(cls.fields.values())
        for path in cls.matching_fields:
            if path not in mapped:
                problems.append(
                    f"{cls.__name__}.matching_fields: {path!r} is not a Connec! path of "
                    "its fields (a matching value must be sent)"
                )
        return problems

    @classmethod
    def update_field_names(cls) -> list[str]:
        """Fields the import writes with ``bulk_update``; extend if ``to_local`` sets more."""
        return cls.local_field_names()

    @classmethod
    def dependencies(cls) -> set[str]:
        entities = set(cls.depends_on)
        for mapping in (cls, *cls.children):
            entities.update(entity for _, entity in mapping.references.values())
        entities.discard(cls.entity)
        return entities

    @classmethod
    def referenced_ids(cls, data: Mapping[str, Any]) -> dict[str, set[str]]:
        wanted = super().referenced_ids(data)
        for child in cls.children:
            for item in _child_items(data, child):
                for entity, ids in child.referenced_ids(item).items():
                    wanted.setdefault(entity, set()).update(ids)
        return wanted

    # --- import -----------------------------------------------------------------
    def to_local(
        self,
        data: Mapping[str, Any],
        *,
        instance: models.Model,
        references: ReferenceResolver,
    ) -> models.Model:
        """Apply a Connec! record to ``instance`` (new or existing); return it unsaved.

        Override to derive fields the declarations cannot express; raise
        :class:`MappingError` to reject the record.
        """
        self.apply_fields(data, instance, references)
        return instance

    def children_to_local(
        self,
        data: Mapping[str, Any],
        *,
        company: Any,
        references: ReferenceResolver,
    ) -> dict[type[ChildMapping], list[models.Model]]:
        """Unsaved child objects (without parent yet) for every :class:`ChildMapping`."""
        result: dict[type[ChildMapping], list[models.Model]] = {}
        for child in self.children:
            raw_items = get_path(data, child.path, None)
            if raw_items is None:
                continue
            if not isinstance(raw_items, list):
                raise MappingError(f"{child.path}: not a list")
            objects: list[models.Model] = []
            if not raw_items:
                result[child] = objects
                continue
            new_child = _child_factory(child, company)
            for position, item in enumerate(raw_items, start=1):
                if not isinstance(item, Mapping):
                    raise MappingError(f"{child.path}[{position}]: not an object")
                obj = new_child()
                try:
                    child.apply_fields(item, obj, references)
                except MappingError as error:
                    raise MappingError(f"{child.path}[{position}]: {error}") from None
                if child.position_field and getattr(obj, child.position_field) in (None, ""):
                    setattr(obj, child.position_field, position)
                objects.append(obj)
            result[child] = objects
        return result

    # --- export -----------------------------------------------------------------
    def to_connec(self, instance: models.Model, *, references: ReferenceResolver) -> dict:
        """The Connec! payload of ``instance`` (without ``id``), children included."""
        data = self.export_fields(instance, references)
        for child in self.children:
            # In position order, ties by primary key: the push gives each line its Connec!
            # id by its place in this list (maestrano_sync.children).
            related = child.model._default_manager.filter(
                **{child.parent_field: instance}
            ).order_by(*(child.position_field,) if child.position_field else (), "pk")
            data[child.path] = [child.export_fields(obj, references) for obj in related]
        return data


#: The last children factory of each child mapping, with the company object it is for.
_CHILD_FACTORIES: dict[type, tuple[Any, Callable[[], models.Model]]] = {}


def _child_factory(child: type[ChildMapping], company: Any) -> Callable[[], models.Model]:
    """New children of ``company`` (:meth:`~_Mapping.instance_factory`). Kept for the next
    record of the same company object (a page's records share it), so that it is made
    once per page."""
    cached = _CHILD_FACTORIES.get(child)
    if cached is not None and cached[0] is company:
        return cached[1]
    tenant_object = child.tenant_object_for(company)
    factory = child.instance_factory(company, tenant_object=tenant_object)
    _CHILD_FACTORIES[child] = (company, factory)
    return factory


def _child_items(data: Mapping[str, Any], child: type[ChildMapping]) -> Iterable[Mapping]:
    items = get_path(data, child.path, None)
    if isinstance(items, list):
        return [item for item in items if isinstance(item, Mapping)]
    return []
