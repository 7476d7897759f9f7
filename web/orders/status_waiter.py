"""Long-polling support for GET /orders/{id}/status?wait=N: one Redis subscription per app
(web/subscriptions.py) wakes the requests waiting on an order when a door announces a change
(models.orders.announce).

Each app owns one StatusWaiters (web/app.py's create_app puts it on app.state.waiters; the route
reaches it as request.app.state.waiters), whose subscription the app's lifespan starts.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from models.orders.states import STATUS_CHANNEL
from web.subscriptions import Subscription


class StatusWaiters:
    """The requests of one app waiting for an order to change, by order id."""

    def __init__(
        self,
        on_change: Callable[[int, str | None], None] = lambda _id, _row: None,
        on_gap: Callable[[], None] = lambda: None,
    ) -> None:
        self._waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)
        # Each announced order id, with the committed row when the announcement carries it (the app
        # keeps it as its status copy) or None (the app drops its copy).
        self.on_change = on_change
        # A dropped connection: waiting requests re-read the order at least every second anyway.
        self.subscription = Subscription(STATUS_CHANNEL, self._wake, on_gap)

    def _wake(self, data: bytes) -> None:
        """Resolve this loop's futures waiting on the announced order (other loops have listeners too)."""
        head, _, row = data.decode().partition(" ")  # models.orders.states.announcement, or an id
        order_id = int(head)
        self.on_change(order_id, row or None)
        waiting = self._waiters.get(order_id, set())
        loop = asyncio.get_running_loop()
        for future in [f for f in waiting if f.get_loop() is loop]:
            waiting.discard(future)
            if not future.done():
                future.set_result(None)
        if not waiting:
            self._waiters.pop(order_id, None)

    def register(self, order_id: int) -> asyncio.Future[None]:
        """A future resolved at the next announcement for this order (register before reading)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[order_id].add(future)
        return future

    def forget(self, order_id: int, future: asyncio.Future[None]) -> None:
        waiting = self._waiters.get(order_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                self._waiters.pop(order_id, None)

    def waiting(self) -> int:
        """How many requests are waiting (tests, diagnostics)."""
        return sum(len(futures) for futures in self._waiters.values())
