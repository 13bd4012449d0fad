"""Django's Redis cache backend, keeping one redis-py client per connection pool.

``CACHES = {"default": {"BACKEND": "maestrano_integration.cache.RedisCache", ...}}``
(the example project's ``CACHE_URL=redis://...`` selects it, docs/deploy.md).

Django's :class:`~django.core.cache.backends.redis.RedisCache` builds a new
``redis.Redis`` client around its connection pool for every operation. Building
one fills the client's table of response callbacks (about 170 entries in redis-py
8): it took longer than the round trip to Redis itself, and a login makes seven
cache operations (session, replay cache, login ticket). This backend builds that
client once per pool and reuses it; the client and its pool are thread-safe, and
Django keeps a cache backend per thread anyway. Everything else is Django's.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
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


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
