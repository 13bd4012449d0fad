"""An adopter's tenant and synced models, keyed by UUIDs and by text."""

from __future__ import annotations

import secrets
import uuid

from django.db import models


def new_firm_code() -> str:
    return f"F-{secrets.token_hex(6)}"


class Workspace(models.Model):
    """The adopter's tenant: a UUID key, linked to the platform company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    company = models.OneToOneField(
        "maestrano_accounts.Company", null=True, blank=True, on_delete=models.SET_NULL
    )


class Firm(models.Model):
    """Synced as ``organizations``: a text key with a default."""

    code = models.CharField(primary_key=True, max_length=60, default=new_firm_code)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    name = models.CharField(max_length=200, blank=True)


class Member(models.Model):
    """Synced as ``people``: a UUID key, a reference to a text-keyed firm."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    firm = models.ForeignKey(Firm, null=True, blank=True, on_delete=models.SET_NULL)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)


class Product(models.Model):
    """Synced as ``items``: a text key without a default, which the mapper's
    ``new_instance`` gives each new row; the Connec! code is a unique field of its own."""

    sku = models.CharField(primary_key=True, max_length=60)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    code = models.CharField(max_length=40, unique=True, null=True, blank=True)
    name = models.CharField(max_length=200, blank=True)
