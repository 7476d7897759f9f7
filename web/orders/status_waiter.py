"""Long-polling support for GET /orders/{id}/status?wait=N: one Redis subscription per process
(web/subscriptions.py) wakes the requests waiting on an order when a door announces a change
(models.orders.announce)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from models.orders.states import STATUS_CHANNEL
from web.subscriptions import Subscription

_waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)


def _wake(data: bytes) -> None:
    """Resolve this loop's futures waiting on the announced order (other loops have listeners too)."""
    order_id = int(data)
    waiting = _waiters.get(order_id, set())
    loop = asyncio.get_running_loop()
    for future in [f for f in waiting if f.get_loop() is loop]:
        waiting.discard(future)
        if not future.done():
            future.set_result(None)
    if not waiting:
        _waiters.pop(order_id, None)


# A dropped connection needs nothing: waiting requests re-read the order at least every second.
subscription = Subscription(STATUS_CHANNEL, _wake)


def register(order_id: int) -> asyncio.Future[None]:
    """A future resolved at the next announcement for this order (register before reading)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _waiters[order_id].add(future)
    return future


def forget(order_id: int, future: asyncio.Future[None]) -> None:
    waiting = _waiters.get(order_id)
    if waiting is not None:
        waiting.discard(future)
        if not waiting:
            _waiters.pop(order_id, None)
