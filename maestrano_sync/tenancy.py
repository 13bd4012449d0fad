"""How a synced row reaches its company: the mapper's ``tenant_field``, a field or a path.

A synced model needs no foreign key to ``maestrano_accounts.Company`` of its own. Its
mapper's ``tenant_field`` is a lookup path that ends at the company: ``"company"``
for a direct foreign key, ``"account__maestrano_company"`` when the model belongs
to the project's own tenant model (``Account``) which links to the company.
Every tenant-scoped query, the company of a changed row (push) and the tenant of
a new row (import) come from this one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models


@dataclass(frozen=True)
class TenantPath:
    """A resolved ``tenant_field``: its first hop (a field of the model) and the rest."""

    model: type[models.Model]
    path: str
    first: models.ForeignKey
    rest: str  # "" for a direct foreign key to the company

    @property
    def is_direct(self) -> bool:
        return not self.rest


def company_model() -> type[models.Model]:
    return apps.get_model("maestrano_accounts", "Company")


@cache
def resolve(model: type[models.Model], path: str) -> TenantPath:
    """Walk ``path`` through foreign keys from ``model`` to the company model.

    Raises :class:`ImproperlyConfigured` with what is wrong, for the system checks.
    """
    parts = path.split("__")
    current = model
    first: Any = None
    for position, part in enumerate(parts):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{model._meta.label}: tenant path {path!r}: {current._meta.label} has no "
                f"field {part!r}"
            ) from None
        if not (field.many_to_one or field.one_to_one) or not field.concrete:
            raise ImproperlyConfigured(
                f"{model._meta.label}: tenant path {path!r}: {current._meta.label}.{part} "
                "is not a ForeignKey or OneToOneField"
            )
        if position == 0:
            first = field
        related = field.related_model
        if not isinstance(related, type):  # a lazy reference to no installed model
            raise ImproperlyConfigured(
                f"{model._meta.label}: tenant path {path!r}: {part} points at {related!r}, "
                f"which is no installed model (the company model is "
                f"{company_model()._meta.label!r})"
            )
        current = related
    if current is not company_model():
        raise ImproperlyConfigured(
            f"{model._meta.label}: tenant path {path!r} ends at {current._meta.label}, "
            f"not at {company_model()._meta.label}"
        )
    return TenantPath(model=model, path=path, first=first, rest="__".join(parts[1:]))


def company_id_of(tenant: TenantPath, instance: models.Model) -> Any:
    """The company id of ``instance`` (``None`` if a link on the way is empty)."""
    if tenant.is_direct:
        return getattr(instance, tenant.first.attname)
    value: Any = instance
    *hops, last = tenant.path.split("__")
    for hop in hops:
        value = getattr(value, hop, None)
        if value is None:
            return None
    return getattr(value, value._meta.get_field(last).attname)


def tenant_object_for(tenant: TenantPath, company: models.Model) -> models.Model:
    """The object new rows of ``company`` point their first hop at.

    The company itself for a direct foreign key; otherwise the one row of the
    first hop's model that leads to ``company`` (the project's own tenant).
    """
    if tenant.is_direct:
        return company
    related = tenant.first.related_model
    matches = list(related._default_manager.filter(**{tenant.rest: company})[:2])
    if len(matches) != 1:
        found = "no" if not matches else "several"
        raise LookupError(
            f"{found} {related._meta.label} rows lead to company {company.pk} through "
            f"{tenant.rest!r}: link the company to exactly one (the adapter's "
            "populate_company or a company_created receiver), or override the mapper's "
            "tenant_object_for()"
        )
    return matches[0]
