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
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from models import cart
from models.cart import PricingRow
from models.redis_client import get_redis
from models.settings import get_settings
from web.api import run
from web.subscriptions import Subscription

log = logging.getLogger("shop.catalog_cache")
CHANNEL = "catalog-changed"
MAX_ENTRIES = 2000
MAX_ROWS = 50000
_entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
_in_flight: dict[tuple[int, int, str], asyncio.Future[object]] = {}  # (loop, generation, key) being produced
# Bumped by every clear(): what was read from the database before a clear is neither kept nor
# shared with requests that arrive after it.
_generation = 0
T = TypeVar("T")
# Cart pricing rows by product id (models.cart.PricingRow), under the same TTL and invalidation.
_rows: dict[int, tuple[float, PricingRow]] = {}


def get(key: str) -> bytes | None:
    """The cached body for key, if fresh."""
    entry = _entries.get(key)
    if entry is None:
        return None
    expires, body = entry
    if expires < time.monotonic():
        _entries.pop(key, None)
        return None
    _entries.move_to_end(key)
    return body


async def through(key: str | None, render: Callable[[], Awaitable[bytes]]) -> bytes:
    """The body for key: from the cache, or rendered once however many requests ask for it at the
    same moment (when an entry expires under load, one request reads the database, not all of them).
    key None: not cacheable (a signed-in caller), always rendered."""
    if key is None:
        return await render()
    body = get(key)
    if body is not None:
        return body

    generation = _generation

    async def render_and_keep() -> bytes:
        body = await render()
        if generation == _generation:  # no admin write since the render began
            put(key, body)
        return body

    return await _once(key, render_and_keep)


async def _once(key: str, produce: Callable[[], Awaitable[T]]) -> T:
    """produce() once for every caller in this event loop that asks for key while it runs; if it
    fails (a 404, say), each waiting caller finds out for itself."""
    loop = asyncio.get_running_loop()
    flight = (id(loop), _generation, key)
    pending = _in_flight.get(flight)
    if pending is not None:
        await asyncio.wait({pending})
        if not pending.cancelled():
            return cast(T, pending.result())
        return await produce()
    future: asyncio.Future[object] = loop.create_future()
    _in_flight[flight] = future
    try:
        value = await produce()
    except BaseException:
        future.cancel()
        raise
    finally:
        _in_flight.pop(flight, None)
    future.set_result(value)
    return value


def put(key: str, body: bytes) -> None:
    ttl = get_settings().catalog_cache_ttl
    if ttl <= 0:
        return
    _entries[key] = (time.monotonic() + ttl, body)
    _entries.move_to_end(key)
    while len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)


def clear() -> None:
    global _generation
    _generation += 1
    _entries.clear()
    _rows.clear()


async def cart_rows(product_ids: list[int]) -> dict[int, PricingRow]:
    """The pricing rows of the published products among product_ids (models.cart.RowLookup): from
    this cache, reading only the missing ones from the database (one query)."""
    now = time.monotonic()
    found: dict[int, PricingRow] = {}
    missing = []
    for product_id in product_ids:
        entry = _rows.get(product_id)
        if entry is not None and entry[0] >= now:
            found[product_id] = entry[1]
        else:
            missing.append(product_id)
    if missing:
        found.update(await _once("rows:" + ",".join(map(str, missing)), lambda: _fetch_rows(missing)))
    return found


async def _fetch_rows(product_ids: list[int]) -> dict[int, PricingRow]:
    generation = _generation
    fetched: dict[int, PricingRow] = await run(cart.pricing_rows, product_ids)
    ttl = get_settings().catalog_cache_ttl
    if ttl > 0 and generation == _generation:
        if len(_rows) + len(fetched) > MAX_ROWS:
            _rows.clear()
        expires = time.monotonic() + ttl
        _rows.update((product_id, (expires, row)) for product_id, row in fetched.items())
    return fetched


def invalidate() -> None:
    """After an administrator's write commits: forget here, and tell the other web processes."""
    clear()
    try:
        get_redis().publish(CHANNEL, "1")
    except Exception:  # Redis down: the others catch up within the TTL
        log.warning("could not announce a catalogue change; other processes refresh within the TTL")


# An administrator's write in another process clears this one's cache; so does a dropped
# connection, since announcements may have been missed meanwhile.
subscription = Subscription(CHANNEL, lambda _data: clear(), on_gap=clear)
