"""Django's cache sessions, with one round trip per write of an existing session in Redis.

``SESSION_ENGINE = "maestrano_accounts.cache_session_store"`` (the production recipe,
docs/deploy.md). Django's cache backend saves an existing session with a ``GET``
(is it still there? if not, ``UpdateError``: it was deleted meanwhile, by a logout
for instance) and then a ``SET``: two round trips, with a window between them.
On :class:`maestrano_integration.cache.RedisCache` this store makes the same
check and write with one ``SET ... XX`` (written only if the key still exists,
atomically; ``UpdateError`` otherwise). Creating a session, loading and deleting
one, and any other cache go through Django's code unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.core.cache.backends.base import BaseCache

from maestrano_integration.cache import RedisCache


class SessionStore(CacheSessionStore):
    # Django's cache SessionStore attributes (django-stubs leaves them out).
    _cache: BaseCache
    _get_session: Callable[..., dict[str, Any]]

    def save(self, must_create: bool = False) -> None:
        if must_create or self.session_key is None or not isinstance(self._cache, RedisCache):
            return super().save(must_create=must_create)
        if not self._cache.set_existing(
            self.cache_key, self._get_session(no_load=False), self.get_expiry_age()
        ):
            raise UpdateError
        return None
