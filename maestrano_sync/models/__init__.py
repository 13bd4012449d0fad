"""The sync's models.

``mapping``: what is mapped and imported (IdMap, runs, parked records); ``live``: the
live sync's outbox, inbox, conflicts, state, lock and tombstones; ``settings``: what each
company syncs and the history of its changes.
"""

from .live import (
    InboxEntry,
    InboxRecord,
    InboxSummary,
    OutboxEntry,
    RemoteTombstone,
    SyncConflict,
    SyncLock,
    SyncState,
)
from .mapping import IdMap, SyncRecordError, SyncRun, SyncRunEntity
from .settings import CompanySyncSettings, SyncSettingsChange

__all__ = [
    "CompanySyncSettings",
    "IdMap",
    "InboxEntry",
    "InboxRecord",
    "InboxSummary",
    "OutboxEntry",
    "RemoteTombstone",
    "SyncConflict",
    "SyncLock",
    "SyncRecordError",
    "SyncRun",
    "SyncRunEntity",
    "SyncSettingsChange",
    "SyncState",
]
