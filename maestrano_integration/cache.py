"""Django's Redis cache backend, keeping one redis-py client per connection pool, with the
three one-round-trip operations a login needs.

``CACHES = {"default": {"BACKEND": "maestrano_integration.cache.RedisCache", ...}}``
(the example project's ``CACHE_URL=redis://...`` selects it, docs/deploy.md).

Django's :class:`~django.core.cache.backends.redis.RedisCache` builds a new
``redis.Redis`` client around its connection pool for every operation. Building
one fills the client's table of response callbacks (about 170 entries in redis-py
8): it took longer than the round trip to Redis itself. This backend builds that
client once per pool and reuses it; the client and its pool are thread-safe, and
Django keeps a cache backend per thread anyway.

Django's cache API has no atomic read-and-delete, no write of an existing key only,
and no conditional pair of writes; each would take two round trips (and, for the
first two, a window between them). A login needs all three, so this backend adds them,
each one Redis command or script (callers keep Django's generic path for other caches):

* :meth:`RedisCache.pop`: ``GETDEL`` (Redis 6.2+), the login ticket taken once;
* :meth:`RedisCache.set_existing`: ``SET ... XX``, a session saved only if it still
  exists (:mod:`maestrano_accounts.cache_session_store`);
* :meth:`RedisCache.add_then_set`: ``SET NX`` of one key and, only if it was added,
  ``SET`` of another (a Lua script: atomic), the replay cache and the login ticket.

Everything else is Django's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.core.cache.backends import redis as django_redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from redis.commands.core import Script

#: Django's local-memory cache: one per process, so nothing counted or stored in it is
#: shared by a deployment's workers (the deploy checks warn where that matters).
LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"

#: KEYS[1] added (NX) with ARGV[1] for ARGV[2] seconds; only then KEYS[2] set to ARGV[3]
#: for ARGV[4] seconds. Returns 1 when added, 0 when KEYS[1] existed (nothing written).
_ADD_THEN_SET = Script(
    None,  # type: ignore[arg-type]  # no registered client: each call passes its own
    b"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then "
    b"redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4]) return 1 end return 0",
)


class RedisCacheClient(django_redis.RedisCacheClient):
    # Django's private attributes this client builds on (django-stubs leaves them out).
    _client: type[Any]
    _serializer: Any
    _get_connection_pool: Callable[[bool], Any]
    _get_connection_pool_index: Callable[[bool], int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._client(connection_pool=self._get_connection_pool(write))
            self._clients[index] = client
        return client

    def pop(self, key: str, default: Any) -> Any:
        value = self.get_client(key, write=True).getdel(key)
        return default if value is None else self._serializer.loads(value)

    def pop_and_get(self, pop_key: str, get_key: str) -> tuple[Any, Any]:
        pipe = self.get_client(pop_key, write=True).pipeline(transaction=False)
        pipe.getdel(pop_key)
        pipe.get(get_key)
        loads = self._serializer.loads
        return tuple(None if value is None else loads(value) for value in pipe.execute())  # type: ignore[return-value]

    def set_existing(self, key: str, value: Any, timeout: int | None) -> bool:
        client = self.get_client(key, write=True)
        if timeout == 0:  # Django's ``set`` with a timeout of 0 deletes the key
            return bool(client.delete(key))
        return bool(client.set(key, self._serializer.dumps(value), ex=timeout, xx=True))

    def add_then_set(
        self, add_key: str, add_value: Any, add_timeout: int, key: str, value: Any, timeout: int
    ) -> bool:
        dumps = self._serializer.dumps
        client = self.get_client(add_key, write=True)
        args = (dumps(add_value), add_timeout, dumps(value), timeout)
        return bool(_ADD_THEN_SET(keys=(add_key, key), args=args, client=client))


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    @property
    def _client_of_ours(self) -> RedisCacheClient:
        """Django's ``_cache``, made of :attr:`_class`."""
        return cast(RedisCacheClient, self._cache)

    def pop(self, key: str, default: Any = None, version: int | None = None) -> Any:
        """The value of ``key``, deleted in the same command: of two callers, one gets it."""
        key = self.make_and_validate_key(key, version=version)
        return self._client_of_ours.pop(key, default)

    def pop_and_get(
        self, pop_key: str, get_key: str, version: int | None = None
    ) -> tuple[Any, Any]:
        """:meth:`pop` of ``pop_key`` and ``get`` of ``get_key``, in this order and in one
        round trip (not atomic together); ``None`` for a key that was not there."""
        return self._client_of_ours.pop_and_get(
            self.make_and_validate_key(pop_key, version=version),
            self.make_and_validate_key(get_key, version=version),
        )

    def set_existing(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """``set``, only if ``key`` exists (one command); whether it did."""
        key = self.make_and_validate_key(key, version=version)
        # Django's RedisCache answers whole seconds or None (the stubs give BaseCache's float).
        seconds = cast(int | None, self.get_backend_timeout(timeout))
        return self._client_of_ours.set_existing(key, value, seconds)

    def add_then_set(
        self,
        add_key: str,
        add_value: Any,
        key: str,
        value: Any,
        *,
        add_timeout: int,
        timeout: int,
        version: int | None = None,
    ) -> bool:
        """``add(add_key, ...)`` and, only if that added it, ``set(key, ...)``, atomically and
        in one round trip; whether ``add_key`` was added. Timeouts in whole seconds, > 0."""
        if add_timeout <= 0 or timeout <= 0:
            raise ValueError("add_then_set needs positive timeouts")
        return self._client_of_ours.add_then_set(
            self.make_and_validate_key(add_key, version=version),
            add_value,
            int(add_timeout),
            self.make_and_validate_key(key, version=version),
            value,
            int(timeout),
        )
