"""``MAESTRANO["SYNC"]``: the sync's own settings, their defaults and typed access.

The defaults are the fields of :class:`SyncSettings` (one place; docs/settings.md
lists them, ``tests/test_docs_settings.py`` checks it). Read them with
:func:`sync_settings` (``sync_settings().page_size`` ...): the project's values over
the defaults, each of its default's type, cached until ``settings.MAESTRANO`` changes.
The Connec! client's transport keys (``HTTP_RETRIES``, ``BACKOFF_*``,
``RETRY_AFTER_MAX``, ``PAGE_SIZE``) belong to ``MAESTRANO["CONNEC"]``
(:class:`maestrano_integration.conf.ConnecSettings`); set under ``SYNC`` they are still
honoured, with a DeprecationWarning and the check ``maestrano.W013``.
"""

from __future__ import annotations

from dataclasses import dataclass

from maestrano_integration.conf import maestrano_settings, register_section, section_defaults
from maestrano_integration.connec_wire import MAX_BATCH_OPS


@dataclass(frozen=True)
class SyncSettings:
    """Every key of ``MAESTRANO["SYNC"]`` (lower case here), with its default."""

    #: Master switch of the Connec! sync.
    enabled: bool = True
    #: Operations per Connec! batch request when pushing.
    batch_size: int = 100
    #: Enqueue the initial import when a company is created (first SSO login).
    import_on_company_created: bool = True
    #: Larger notification bodies are refused with 413, nothing stored.
    notification_max_body_bytes: int = 5 * 1024 * 1024
    #: Attempts of an import task, or of a pushed record, before it is parked.
    max_attempts: int = 8
    #: Celery retries of an import whose page still fails after the transport retries:
    #: countdown = task_retry_backoff * 2**attempt, capped.
    task_retry_backoff: int = 30
    task_retry_backoff_max: int = 900
    #: Connec! entities an adopter's mappers may use beyond the built-in list.
    extra_entities: tuple[str, ...] = ()
    #: Fetch the next import page in a thread while the current one is written.
    prefetch: bool = True
    #: False: on PostgreSQL an import page's transaction (its rows, IdMap rows and cursor
    #: together) commits without waiting for the disk flush; a server crash may lose the
    #: last pages, which the resumed import applies again.
    import_synchronous_commit: bool = False
    #: Enqueue the outbox drain when a transaction with local changes commits.
    push_on_commit: bool = True
    #: Push backoff of a record whose send failed transiently (network, 429, 5xx):
    #: push_retry_backoff * 2**(attempts-1), jittered, capped; parked after max_attempts.
    push_retry_backoff: float = 2.0
    push_retry_backoff_max: float = 300.0
    #: Send a push's batch request n in a thread while batch n-1's answers are recorded
    #: and batch n+1 is built (one request in flight at a time; the order is kept).
    push_pipeline: bool = True
    #: Outbox rows read per drain round (coalesced, then sent batch_size ops per request).
    drain_window: int = 1000
    #: Lease of a company's sync lock (renewed while working; a killed worker's expires).
    lock_lease_seconds: float = 60.0
    #: Days of sync history (push, notification and reconciliation runs) kept; 0: all.
    history_days: int = 30

    @property
    def ops_per_batch(self) -> int:
        """``batch_size`` within what one Connec! batch request takes (1 to 500 ops)."""
        return min(max(self.batch_size, 1), MAX_BATCH_OPS)


#: ``{KEY: default}`` of ``MAESTRANO["SYNC"]``.
SYNC_DEFAULTS = section_defaults(SyncSettings)

register_section("SYNC", SYNC_DEFAULTS)


def sync_settings() -> SyncSettings:
    """``MAESTRANO["SYNC"]``, typed (cached until ``settings.MAESTRANO`` changes)."""
    return maestrano_settings.typed("SYNC", SyncSettings)
