"""Django's cache sessions, with one round trip per write of an existing session in Redis.

``SESSION_ENGINE = "maestrano_accounts.cache_session_store"`` (the production recipe,
docs/deploy.md). Django's cache backend saves an existing session with a ``GET``
(is it still there? if not, ``UpdateError``: it was deleted meanwhile, by a logout
for instance) and then a ``SET``: two round trips, with a window between them.
On :class:`maestrano_integration.cache.RedisCache` this store makes the same
check and write with one ``SET ... XX`` (written only if the key still exists,
atomically; ``UpdateError`` otherwise). Creating a session, loading and deleting
one, and any other cache go through Django's code unchanged, except that a view may load
the session along with a command of its own on the same cache
(:meth:`SessionStore.key_to_load_along`): the SSO completion reads it in the round trip
that takes its login ticket.
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

    def key_to_load_along(self, cache: BaseCache) -> str | None:
        """The key to read this session under when the caller reads it itself, in one round
        trip with a command of its own on ``cache``, then hands the value to
        :meth:`loaded`; ``None`` when it cannot: another cache, no session key (a new
        session), or the session already loaded."""
        if cache is not self._cache or self.session_key is None or hasattr(self, "_session_cache"):
            return None
        return self.cache_key

    def loaded(self, data: Any) -> None:
        """Take ``data``, read under :meth:`key_to_load_along`'s key, as :meth:`load` would
        have read it: the session's data, or ``None`` when the session is not (or no
        longer) there, which makes this store a new, empty session."""
        if data is not None:
            self._session_cache = data
        else:
            self._session_key = None
            self._session_cache = {}
