"""A per-process cache of rendered catalogue responses for anonymous storefront reads.

Why: a catalogue is read far more than written, and a hit here costs no threadpool hop and no
query. Staleness is bounded two ways: entries live CATALOG_CACHE_TTL seconds (default 2), which is
how long a listing's stock figures may lag reservations (adding to a cart and reserving always
read the database, so nothing can oversell); and an administrator's create/update/delete clears
this process's cache at once and, through a Redis channel, every other web process's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import redis.asyncio as aioredis

from models.redis_client import get_redis
from models.settings import get_settings

log = logging.getLogger("shop.catalog_cache")
CHANNEL = "catalog-changed"
MAX_ENTRIES = 2000
_entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
_listener: asyncio.Task[None] | None = None


def get(key: str) -> bytes | None:
    """The cached body for key, if fresh (starts this process's invalidation listener)."""
    _ensure_listener()
    entry = _entries.get(key)
    if entry is None:
        return None
    expires, body = entry
    if expires < time.monotonic():
        _entries.pop(key, None)
        return None
    _entries.move_to_end(key)
    return body


def put(key: str, body: bytes) -> None:
    ttl = get_settings().catalog_cache_ttl
    if ttl <= 0:
        return
    _entries[key] = (time.monotonic() + ttl, body)
    _entries.move_to_end(key)
    while len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)


def clear() -> None:
    _entries.clear()


def invalidate() -> None:
    """After an administrator's write commits: forget here, and tell the other web processes."""
    clear()
    try:
        get_redis().publish(CHANNEL, "1")
    except Exception:  # Redis down: the others catch up within the TTL
        log.warning("could not announce a catalogue change; other processes refresh within the TTL")


def _ensure_listener() -> None:
    global _listener
    if _listener is None or _listener.done():
        try:
            _listener = asyncio.get_running_loop().create_task(_listen())
        except RuntimeError:  # no event loop (called from a thread): nothing to listen with
            pass


async def _listen() -> None:
    while True:
        try:
            client = aioredis.from_url(get_settings().redis_url)
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                clear()  # anything cached before we listened may be stale
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("catalogue cache listener: %s; reconnecting", exc.__class__.__name__)
            clear()
            await asyncio.sleep(1)
