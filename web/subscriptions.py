"""Subscriptions a web process keeps for its lifetime, started and stopped by the app's lifespan
(web/app.py): a Redis pub/sub channel (Subscription: the order status long poll, woken when a door
announces a change) or a PostgreSQL LISTEN channel (PgSubscription: the catalogue cache, told by a
trigger about every committed change to products).

One listener runs per event loop: production has one loop per process, tests may run a TestClient
and a live uvicorn server side by side. When a listener's connection drops, or when it
(re)subscribes, on_gap() runs: announcements may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import psycopg2
import psycopg2.extensions
import redis.asyncio as aioredis

from models.infra.db import connect_params
from models.infra.redis_client import get_redis_url
from models.infra.settings import get_settings

log = logging.getLogger("shop.subscriptions")


class Subscription:
    """A Redis pub/sub channel."""

    def __init__(
        self, channel: str, on_message: Callable[[bytes], None], on_gap: Callable[[], None] = lambda: None
    ) -> None:
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
                try:
                    await self._session()
                finally:
                    self.subscribed.clear()  # at once: not after the second before reconnecting
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s listener: %s; reconnecting", self.channel, exc.__class__.__name__)
                self.on_gap()
                await asyncio.sleep(1)

    def _subscribed(self) -> None:
        self.subscribed.set()
        self.on_gap()  # whatever changed before now was not heard

    async def _session(self) -> None:
        """Connect, subscribe, and pass messages on until the connection fails."""
        async with aioredis.from_url(get_redis_url()) as client, client.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            self._subscribed()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self.on_message(message["data"])


class PgSubscription(Subscription):
    """A PostgreSQL LISTEN channel on a connection of its own; on_message gets each payload (str).

    The connection goes to DATABASE_DIRECT_URL: a LISTEN belongs to the server session, and a pooler
    in transaction mode (PgBouncer) hands that session to other clients after each statement, so
    the notifications would reach whoever holds it then, or no one.
    """

    def __init__(
        self, channel: str, on_message: Callable[[str], None], on_gap: Callable[[], None] = lambda: None
    ) -> None:
        super().__init__(channel, on_message, on_gap)  # type: ignore[arg-type]

    def _connect(self) -> psycopg2.extensions.connection:
        name, params = connect_params(get_settings().database_direct_url)
        conn = psycopg2.connect(
            dbname=name,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
            **params,
        )  # type: ignore[arg-type]
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'LISTEN "{self.channel}"')
        return conn

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(None, self._connect)
        readable = asyncio.Event()
        try:
            # The descriptor is kept from here: once the server drops the connection, psycopg2
            # closes its socket and fileno() raises, and a reader left registered on the number
            # would take over the next socket to get it (an HTTP client's, never to be served).
            fd = conn.fileno()
            loop.add_reader(fd, readable.set)
            try:
                self._subscribed()
                while True:
                    await readable.wait()
                    readable.clear()
                    conn.poll()  # raises when the server has gone away
                    while conn.notifies:
                        self.on_message(conn.notifies.pop(0).payload)
            finally:
                loop.remove_reader(fd)
        finally:
            conn.close()
