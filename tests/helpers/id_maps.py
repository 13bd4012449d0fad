"""IdMap rows written directly, for tests that need a company's links as they would be
after an import (no Connec! involved)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from maestrano_sync.models import IdMap


def link_objects(
    company: Any, model: type[models.Model], entity: str, links: Iterable[tuple[Any, str]]
) -> list[IdMap]:
    """One IdMap row of ``company`` per (local object id, Connec! id) of ``links``."""
    content_type = ContentType.objects.get_for_model(model)
    return IdMap.objects.bulk_create(
        IdMap(
            company=company,
            entity=entity,
            content_type=content_type,
            object_id=str(object_id),
            connec_id=connec_id,
        )
        for object_id, connec_id in links
    )
