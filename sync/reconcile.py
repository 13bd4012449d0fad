"""Periodic reconciliation: recover notifications that never arrived.

Per company and entity (import enabled and subscribed), fetch the records with
``updated_at gt <watermark>`` and apply them exactly like notifications
(:func:`sync.inbox.apply_records`: stale versions and the echoes of our own
pushes are skipped). The watermark is the newest ``updated_at`` reconciled;
the first run starts from the newest version the IdMap knows (pulled or
pushed) or, with no IdMap at all, from the beginning.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.utils import timezone

from accounts.models import Company
from maestrano_integration.connec import ConnecClient, ConnecError

from . import history, idmap
from .company_settings import import_done, pending_imports, policy_for
from .inbox import ApplyResult, apply_records, entity_is_applicable
from .locks import company_run
from .mappers import connec_time_or_none
from .models import SyncRun, SyncState
from .registry import registry

logger = logging.getLogger(__name__)


def connec_timestamp(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def initial_watermark(*, company: Company, entity: str) -> datetime.datetime | None:
    return idmap.newest_version(company=company, entity=entity)


def reconcile(
    *, company: Company, entities: list[str] | None = None, client: ConnecClient | None = None
) -> dict[str, Any]:
    """Reconcile ``company``; returns per-entity counts (or ``{"locked": True}``)."""
    summary: dict[str, Any] = {}
    started_at = timezone.now()
    with company_run(company=company, client=client) as held:
        if held is None:
            return {"locked": True}
        _token, client = held
        for entity in registry.import_order(entities):
            if entity_is_applicable(company=company, entity=entity) is not None:
                continue
            try:
                summary[entity] = reconcile_entity(company=company, entity=entity, client=client)
            except ConnecError as error:
                summary[entity] = {"error": str(error)}
                logger.warning(
                    "Reconciliation of %s stopped: %s",
                    entity,
                    error,
                    extra={"preset": company.preset, "group": company.group_uid},
                )
    _record_history(company=company, summary=summary, started_at=started_at)
    return summary


def _record_history(
    *, company: Company, summary: dict[str, Any], started_at: datetime.datetime
) -> None:
    """One history row for the whole reconciliation, when it applied or failed anything."""
    totals: dict[str, int] = {}
    errors = []
    for entity, counts in summary.items():
        if "error" in counts:
            errors.append(f"{entity}: {counts['error']}")
            continue
        for key, value in counts.items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    history.record_run(
        company=company,
        kind=SyncRun.Kind.RECONCILE,
        counts=totals,
        failed=totals.get("failed", 0),
        error="; ".join(errors),
        started_at=started_at,
    )


def catch_up(*, company: Company, client: ConnecClient | None = None) -> dict[str, Any]:
    """Import ``entities`` again through the notification path (import switched back on).

    Every record changed since the company's ``import_since`` (all of them
    without it) is fetched and applied like a notification
    (:func:`sync.inbox.apply_records`): known and unchanged versions are
    skipped, a record changed on both sides follows the conflict rule, and the
    local changes held meanwhile are not overwritten by older remote versions.
    The entities are the company's pending imports
    (:func:`sync.company_settings.pending_imports`); each is no longer pending
    once imported. Runs under the company lock; ``{"locked": True}`` when
    another worker holds it. Nothing is done while the sync is off.
    """
    policy = policy_for(company_id=company.pk)
    entities = pending_imports(company_id=company.pk)
    if not entities or not policy.enabled:
        return {}
    summary: dict[str, Any] = {}
    with company_run(company=company, client=client) as held:
        if held is None:
            return {"locked": True}
        _token, client = held
        for entity in registry.import_order(entities):
            if not policy_for(company_id=company.pk).enabled:
                break  # switched off meanwhile: the rest stays pending
            if entity_is_applicable(company=company, entity=entity) is not None:
                import_done(company_id=company.pk, entity=entity)  # not imported any more
                continue
            result = ApplyResult()
            pages = client.iter_pages(
                entity, filter=policy.import_filter(), orderby="updated_at asc"
            )
            for page in pages:
                if not page.records:
                    break
                result.add(
                    apply_records(
                        company=company, entity=entity, records=page.records, client=client
                    )
                )
            summary[entity] = result.as_dict()
            import_done(company_id=company.pk, entity=entity)
    logger.info(
        "Connec! catch-up import of %s: %s",
        company,
        summary,
        extra={"preset": company.preset, "group": company.group_uid},
    )
    return summary


def reconcile_entity(*, company: Company, entity: str, client: ConnecClient) -> dict[str, int]:
    """Fetch and apply one entity's changes since its watermark, page by page."""
    state, _ = SyncState.objects.get_or_create(company=company, entity=entity)
    watermark = state.reconcile_watermark or initial_watermark(company=company, entity=entity)
    query = f"updated_at gt '{connec_timestamp(watermark)}'" if watermark else None
    result = ApplyResult()
    for page in client.iter_pages(entity, filter=query, orderby="updated_at asc"):
        if not page.records:
            break
        result.add(
            apply_records(company=company, entity=entity, records=page.records, client=client)
        )
        stamps = [
            connec_time_or_none(r.get("updated_at")) for r in page.records if isinstance(r, dict)
        ]
        stamps = [s for s in stamps if s is not None]
        if stamps and (watermark is None or max(stamps) > watermark):
            watermark = max(stamps)
            SyncState.objects.filter(pk=state.pk).update(reconcile_watermark=watermark)
    SyncState.objects.filter(pk=state.pk).update(last_reconcile_at=timezone.now())
    return result.as_dict()
