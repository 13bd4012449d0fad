"""A model's fields as columns, typed: ``_meta.get_field`` also answers reverse relations
(``ForeignObjectRel``: no column, no ``attname``), which the sync's mappings and the bulk
inserts never name; these helpers say so once, for the type checker and for a wrong name."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models


def model_field(model: type[models.Model] | models.Model, name: str) -> models.Field[Any, Any]:
    """``model``'s field ``name`` (``FieldDoesNotExist`` for a reverse relation, as for an
    unknown name)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise FieldDoesNotExist(f"{model._meta.label}.{name} is a reverse relation, not a field")
    return field


def field_attname(model: type[models.Model] | models.Model, name: str) -> str:
    """The instance attribute of ``model``'s field ``name`` (``company_id`` for ``company``)."""
    return model_field(model, name).attname


def key_target(field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """The field whose values ``field`` holds: the target of a foreign key, else itself."""
    return field.target_field if isinstance(field, models.ForeignObject) else field


def column_name(field: models.Field[Any, Any] | models.ForeignObjectRel) -> str:
    """``field``'s column (``ValueError`` for a field without one: a reverse relation, a
    many-to-many field, a composite key)."""
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise ValueError(f"{field} is not a column")
    return column
