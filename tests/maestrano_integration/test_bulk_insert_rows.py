"""``maestrano_integration.bulk_insert.insert_rows`` writes the rows ``create()`` writes: the
given columns, the shared values (by name or attribute name) and, for every other field,
its default (``auto_now``/``auto_now_add``: the time of the call), whatever earlier calls
of the same shape were given; the new primary keys in the rows' order."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm.models import Organization
from maestrano_accounts.models import Company
from maestrano_integration import bulk_insert

pytestmark = pytest.mark.django_db

_STAMPS = {"id", "created_at", "updated_at"}


def _values(pks: list) -> list[dict]:
    rows = Organization.objects.filter(pk__in=pks).order_by("pk").values()
    return [{k: v for k, v in row.items() if k not in _STAMPS} for row in rows]


def test_given_shared_and_default_values_as_create_writes_them():
    company = Company.objects.create(preset="maestrano", group_uid="cld-rows", name="Rows")
    before = timezone.now()

    shared = bulk_insert.insert_rows(
        Organization,
        fields=("company_id", "name"),
        rows=[(company.pk, "A"), (company.pk, "B")],
        shared={"city": "Sydney", "is_supplier": True},
        returning=True,
    )
    # The same shape again: the defaults, not the previous call's shared values.
    defaults = bulk_insert.insert_rows(
        Organization, fields=("company_id", "name"), rows=[(company.pk, "C")], returning=True
    )
    # A foreign key shared by its attribute name.
    by_attname = bulk_insert.insert_rows(
        Organization,
        fields=("name",),
        rows=[("D",)],
        shared={"company_id": company.pk},
        returning=True,
    )

    expected = [
        Organization.objects.create(company=company, name="A", city="Sydney", is_supplier=True),
        Organization.objects.create(company=company, name="B", city="Sydney", is_supplier=True),
        Organization.objects.create(company=company, name="C"),
        Organization.objects.create(company=company, name="D"),
    ]
    ours = [*shared, *defaults, *by_attname]
    assert _values(ours) == _values([obj.pk for obj in expected])
    for row in Organization.objects.filter(pk__in=ours):
        assert row.created_at == row.updated_at >= before


def test_nothing_to_insert_is_no_statement():
    assert bulk_insert.insert_rows(Organization, fields=("name",), rows=[], returning=True) == []


def test_rows_without_fields_are_refused():
    with pytest.raises(ValueError, match="at least one field"):
        bulk_insert.insert_rows(Organization, fields=(), rows=[(), ()])
    assert not Organization.objects.exists()
