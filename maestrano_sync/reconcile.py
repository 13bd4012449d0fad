"""Periodic reconciliation: recover notifications that never arrived.

Per company and entity (import enabled and subscribed), fetch the records with
``updated_at gt <watermark>`` and apply them exactly like notifications
(:func:`maestrano_sync.inbox.apply_records`: stale versions and the echoes of our own
pushes are skipped). The watermark is the newest ``updated_at`` reconciled;
the first run starts from the newest version the IdMap knows (pulled or
pushed) or, with no IdMap at all, from the beginning.

A page whose write the database refuses (a concurrent write won a race:
:data:`maestrano_sync.retries.CONCURRENT_WRITE_ERRORS`) is applied again at once, up to
``MAX_ATTEMPTS``; still refused, that entity stops with the reason in the summary
(and the history), its watermark stays before the page (a catch-up import stays
pending) and the other entities go on.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecClient, ConnecError, Page
from maestrano_integration.times import platform_time_text

from . import history, idmap, sync_state
from .company_settings import import_done, pending_imports, policy_for
from .inbox import ApplyResult, apply_records, entity_is_applicable
from .locks import company_run
from .mappers import connec_time_or_none
from .models import SyncRun
from .registry import registry
from .retries import WriteRefused, retrying_refused_writes

logger = logging.getLogger(__name__)


def connec_timestamp(value: datetime.datetime) -> str:
    """A watermark in a Connec! ``$filter``: the platform's time text (four-digit years)."""
    return platform_time_text(value)


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
        for key, value in counts.items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    history.record_run(
        company=company,
        kind=SyncRun.Kind.RECONCILE,
        counts=totals,
        error="; ".join(errors),
        started_at=started_at,
    )


def catch_up(*, company: Company, client: ConnecClient | None = None) -> dict[str, Any]:
    """Import ``entities`` again through the notification path (import switched back on).

    Every record changed since the company's ``import_since`` (all of them
    without it) is fetched and applied like a notification
    (:func:`maestrano_sync.inbox.apply_records`): known and unchanged versions are
    skipped, a record changed on both sides follows the conflict rule, and the
    local changes held meanwhile are not overwritten by older remote versions.
    The entities are the company's pending imports
    (:func:`maestrano_sync.company_settings.pending_imports`); each is no longer pending
    once imported; an entity whose page the database keeps refusing stays
    pending, its reason under ``"error"`` in the summary, and the others go on.
    Runs under the company lock; ``{"locked": True}`` when
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
            try:
                for page in pages:
                    if not page.records:
                        break
                    result.add(apply_page(company=company, entity=entity, page=page, client=client))
            except WriteRefused as refused:
                # Still pending: a later catch-up applies the entity again (idempotently).
                summary[entity] = {**result.as_dict(), "error": refused.reason}
                _log_refusal(company=company, what="Catch-up import", entity=entity, error=refused)
                continue
            summary[entity] = result.as_dict()
            import_done(company_id=company.pk, entity=entity)
    logger.info(
        "Connec! catch-up import of %s: %s",
        company,
        summary,
        extra={"preset": company.preset, "group": company.group_uid},
    )
    return summary


def apply_page(*, company: Company, entity: str, page: Page, client: ConnecClient) -> ApplyResult:
    """Apply one fetched page like notifications; a refused write is tried again at once
    (:func:`maestrano_sync.retries.retrying_refused_writes`,
    :class:`~maestrano_sync.retries.WriteRefused` when
    the database keeps refusing it)."""
    return retrying_refused_writes(
        lambda: apply_records(company=company, entity=entity, records=page.records, client=client),
        what=f"Connec! {entity} page at {page.skip} for {company}",
    )


def _log_refusal(*, company: Company, what: str, entity: str, error: WriteRefused) -> None:
    logger.warning(
        "%s of %s stopped after %s attempts: %s",
        what,
        entity,
        error.attempts,
        error.reason,
        extra={"preset": company.preset, "group": company.group_uid, "entity": entity},
    )


def reconcile_entity(*, company: Company, entity: str, client: ConnecClient) -> dict[str, Any]:
    """Fetch and apply one entity's changes since its watermark, page by page.

    The watermark follows each applied page; a page the database keeps refusing stops
    the entity there (``"error"`` in the counts), for the next reconciliation to apply.
    """
    stored = sync_state.reconcile_watermark(company=company, entity=entity)
    watermark = stored or initial_watermark(company=company, entity=entity)
    query = f"updated_at gt '{connec_timestamp(watermark)}'" if watermark else None
    result = ApplyResult()
    for page in client.iter_pages(entity, filter=query, orderby="updated_at asc"):
        if not page.records:
            break
        try:
            result.add(apply_page(company=company, entity=entity, page=page, client=client))
        except WriteRefused as refused:
            _log_refusal(company=company, what="Reconciliation", entity=entity, error=refused)
            return {**result.as_dict(), "error": refused.reason}
        stamps = [
            connec_time_or_none(r.get("updated_at")) for r in page.records if isinstance(r, dict)
        ]
        times = [s for s in stamps if s is not None]
        if times and (watermark is None or max(times) > watermark):
            watermark = max(times)
            sync_state.record_times(
                company=company, entities=[entity], times={"reconcile_watermark": watermark}
            )
    sync_state.record_times(
        company=company, entities=[entity], times={"last_reconcile_at": timezone.now()}
    )
    return result.as_dict()
