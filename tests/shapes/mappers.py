"""Mappers of the shapes' models, registered by :func:`shape_mappers` in place of the
example app's for the entities they map (the sandbox serves only those entities)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from maestrano_sync.mappers import Mapper
from maestrano_sync.registry import registry

from .models import Firm, Member, Product


class FirmMapper(Mapper):
    entity = "organizations"
    tenant_field = "workspace__company"
    fields = {"name": "name"}


class MemberMapper(Mapper):
    entity = "people"
    tenant_field = "workspace__company"
    fields = {"first_name": "first_name", "last_name": "last_name"}
    references = {"firm": ("organization_id", "organizations")}


class ProductMapper(Mapper):
    entity = "items"
    tenant_field = "workspace__company"
    fields = {"code": "code", "name": "name"}

    @classmethod
    def new_instance(cls, company: Any, *, tenant_object: Any = None) -> Product:
        product = super().new_instance(company, tenant_object=tenant_object)
        product.sku = f"P-{secrets.token_hex(8)}"
        return product


SHAPES = {Firm: FirmMapper, Member: MemberMapper, Product: ProductMapper}


@contextmanager
def shape_mappers() -> Iterator[None]:
    """The shapes' mappers registered in place of every other (the example app's), then
    the others back."""
    others = {mapper.model: type(mapper) for mapper in registry.mappers()}
    for model in others:
        registry.unregister(model)
    try:
        for model, mapper_class in SHAPES.items():
            registry.register_mapper(model, mapper_class)
        yield
    finally:
        for model in SHAPES:
            if registry.is_registered(model):
                registry.unregister(model)
        for model, mapper_class in others.items():
            registry.register_mapper(model, mapper_class)
