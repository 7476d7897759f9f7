"""Long-polling support for GET /orders/{id}/status?wait=N: one Redis subscription per process
wakes the requests waiting on an order when a door announces a change (models.orders.announce)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import redis.asyncio as aioredis

from models.orders import STATUS_CHANNEL
from models.settings import get_settings

log = logging.getLogger("shop.status")
_waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)
_listener: asyncio.Task[None] | None = None


async def _listen() -> None:
    while True:
        try:
            client = aioredis.from_url(get_settings().redis_url)
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(STATUS_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        for future in _waiters.pop(int(message["data"]), set()):
                            if not future.done():
                                future.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis restarted: waiting requests re-check by themselves meanwhile
            log.warning("order status listener: %s; reconnecting", exc.__class__.__name__)
            await asyncio.sleep(1)


def register(order_id: int) -> asyncio.Future[None]:
    """A future resolved at the next announcement for this order (register before reading)."""
    global _listener
    if _listener is None or _listener.done():
        _listener = asyncio.get_running_loop().create_task(_listen())
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _waiters[order_id].add(future)
    return future


def forget(order_id: int, future: asyncio.Future[None]) -> None:
    waiting = _waiters.get(order_id)
    if waiting is not None:
        waiting.discard(future)
        if not waiting:
            _waiters.pop(order_id, None)
