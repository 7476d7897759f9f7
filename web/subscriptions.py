"""Redis pub/sub subscriptions a web process keeps for its lifetime, started and stopped by the
app's lifespan (web/app.py).

Used by the catalogue cache (an administrator's write in any process clears every process's cache)
and the order status long poll (a change wakes the requests waiting on that order). One listener
runs per event loop: production has one loop per process, tests may run a TestClient and a live
uvicorn server side by side.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import redis.asyncio as aioredis

from models.redis_client import get_redis_url

log = logging.getLogger("shop.subscriptions")


class Subscription:
    def __init__(self, channel: str, on_message: Callable[[bytes], None],
                 on_gap: Callable[[], None] = lambda: None) -> None:
        self.channel = channel
        self.on_message = on_message  # called in the listening loop with each message's data
        self.on_gap = on_gap  # called when the connection drops: messages may have been missed
        self.subscribed = threading.Event()  # set while some loop is subscribed
        self._tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Listen from the running loop (once per loop)."""
        loop = asyncio.get_running_loop()
        task = self._tasks.get(loop)
        if task is None or task.done():
            self._tasks[loop] = loop.create_task(self._listen(), name=f"subscription:{self.channel}")

    async def stop(self) -> None:
        """Stop this loop's listener and wait until it has."""
        task = self._tasks.pop(asyncio.get_running_loop(), None)
        # redis-py can swallow a cancellation that lands while it connects; the listener then
        # carries on into listen(), where the next cancellation does land. So: cancel until done.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)

    def _current(self) -> bool:
        return self._tasks.get(asyncio.get_running_loop()) is asyncio.current_task()

    async def _listen(self) -> None:
        while self._current():
            try:
                async with aioredis.from_url(get_redis_url()) as client, client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s listener: %s; reconnecting", self.channel, exc.__class__.__name__)
                self.on_gap()
                await asyncio.sleep(1)
            finally:
                self.subscribed.clear()
