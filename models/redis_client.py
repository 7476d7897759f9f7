"""The Redis clients shared by the cart store, rate limits and token revocation."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from weakref import WeakKeyDictionary

import redis
import redis.asyncio as aioredis

from models.settings import get_settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )


def get_redis_url() -> str:
    url = get_settings().redis_url
    if not url:
        raise RuntimeError("REDIS_URL is not set (run through `python manage.py` for embedded defaults)")
    return url


def get_redis() -> redis.Redis:
    """The Redis holding carts and counters (REDIS_URL)."""
    return _client(get_redis_url())


_async_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = WeakKeyDictionary()


def get_async_redis() -> aioredis.Redis:
    """The same Redis for the web door's coroutines (no threadpool hop; replies parsed by hiredis).

    One client per event loop, since an asyncio connection belongs to the loop that opened it."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = aioredis.Redis.from_url(
            get_redis_url(), decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
            health_check_interval=30)
    return client


async def close_async_redis() -> None:
    """Close this loop's client (the app's lifespan, at shutdown)."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()
