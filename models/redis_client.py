"""The Redis clients shared by the cart store, rate limits and token revocation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import lru_cache
from typing import TypeVar
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


ASYNC_TIMEOUT = 2.0
T = TypeVar("T")
_async_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = WeakKeyDictionary()
_last: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None  # the last loop's, found without hashing


def get_async_redis() -> aioredis.Redis:
    """The same Redis for the web door's coroutines (no threadpool hop; replies parsed by hiredis).

    One client per event loop, since an asyncio connection belongs to the loop that opened it."""
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last[0] is loop:
        return _last[1]
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = aioredis.Redis.from_url(
            get_redis_url(), decode_responses=True, socket_timeout=None, socket_connect_timeout=2)
    _last = (loop, client)
    return client


async def bounded(call: Awaitable[T]) -> T:
    """A call on the async client, given ASYNC_TIMEOUT seconds (redis.TimeoutError after that).

    The async client has no socket timeout of its own: redis-py enforces one on every send by
    starting a task (asyncio.wait_for), a fifth of the cost of a cart read; one deadline per call
    costs a timer."""
    try:
        async with asyncio.timeout(ASYNC_TIMEOUT):
            return await call
    except TimeoutError:
        raise redis.TimeoutError(f"no answer from Redis within {ASYNC_TIMEOUT} s") from None


async def close_async_redis() -> None:
    """Close this loop's client (the app's lifespan, at shutdown)."""
    global _last
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    _last = None
    if client is not None:
        await client.aclose()
