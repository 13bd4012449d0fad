"""The sync's models.

``mapping``: what is mapped and imported (IdMap, runs, parked records); ``live``: the
live sync's outbox, inbox, conflicts, state and lock.
"""

from .live import InboxEntry, OutboxEntry, SyncConflict, SyncLock, SyncState
from .mapping import IdMap, SyncRecordError, SyncRun, SyncRunEntity

__all__ = [
    "IdMap",
    "InboxEntry",
    "OutboxEntry",
    "SyncConflict",
    "SyncLock",
    "SyncRecordError",
    "SyncRun",
    "SyncRunEntity",
    "SyncState",
]
