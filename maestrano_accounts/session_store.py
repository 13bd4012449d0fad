"""Django's database sessions, with one statement per write of an existing session.

``SESSION_ENGINE = "maestrano_accounts.session_store"`` (optional). Django's database
backend wraps every save in a transaction; writing an existing session is a
single ``UPDATE``, atomic by itself in autocommit mode, so this store leaves
the transaction out there (two statements fewer on every request that changes
the session, an SSO login among them). Creating a session, and any write
inside a caller's transaction, go through Django's code unchanged.

A session cookie holding text no database stores or compares (NUL, a lone surrogate)
names no session: the request gets a new one, as with any unknown key, where
PostgreSQL would refuse the query (a 500 on every page for that cookie).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import DatabaseError, router, transaction

from maestrano_integration.strict_input import is_safe_text


class SessionStore(DatabaseSessionStore):
    # SessionBase's private method (django-stubs leaves it out).
    _get_session: Callable[..., dict[str, Any]]

    def _validate_session_key(self, key: str | None) -> bool:
        # SessionBase's private check (django-stubs leaves it out).
        valid = super()._validate_session_key(key)  # type: ignore[misc]
        return bool(valid) and is_safe_text(key or "")

    def save(self, must_create: bool = False) -> None:
        if must_create or self.session_key is None:
            return super().save(must_create=must_create)
        obj = self.create_model_instance(self._get_session())
        using = router.db_for_write(self.model, instance=obj)
        if transaction.get_connection(using).in_atomic_block:
            return super().save(must_create=False)
        try:
            obj.save(force_update=True, using=using)
        except DatabaseError:
            raise UpdateError from None
        return None
