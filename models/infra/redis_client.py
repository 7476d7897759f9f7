"""The Redis clients shared by the cart store, rate limits and token revocation."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

import redis
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.maint_notifications import MaintNotificationsConfig

from models.infra.settings import get_settings


def reconnecting() -> dict[str, Any]:
    """Options every Redis client here is made with (the rate limiter's and pub/sub's too), so a
    connection that Redis closed (a restart) is replaced when the pool hands it out, and the first
    command after Redis returns succeeds. redis-py 8 skips that check while its "maintenance
    notifications" are on, which they are by default ("auto") though Redis 6 and 7 never send any."""
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        **reconnecting(),
    )


def get_redis_url() -> str:
    url = get_settings().redis_url
    if not url:
        raise RuntimeError("REDIS_URL is not set (run through `python manage.py` for embedded defaults)")
    return url


def get_redis() -> redis.Redis:
    """The Redis holding carts and counters (REDIS_URL)."""
    return _client(get_redis_url())


ASYNC_TIMEOUT = 2.0  # seconds a batch of commands on the async client may take


class CommandBatch:
    """Auto-pipelining for one event loop's async client: the commands its coroutines issue in the
    same turn of the loop go to Redis as one pipeline (one write, one read), and each caller gets
    its own reply or error.

    Why: under load the cost of a command is the client's Python and the socket calls, not Redis;
    batching divides both by the batch size (measured: 107 us of CPU per HGETALL alone, 25 us in
    batches, 32 coroutines at once). Nothing waits to fill a batch: an idle process sends batches
    of one. The batch has a deadline of ASYNC_TIMEOUT (redis.TimeoutError after that); the client
    itself has no socket timeout, which redis-py would enforce by starting a task per send."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)  # after the coroutines runnable in this turn have had their say
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        error: BaseException
        try:
            async with asyncio.timeout(ASYNC_TIMEOUT):
                pipe = self.client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except TimeoutError:
            error = redis.TimeoutError(f"no answer from Redis within {ASYNC_TIMEOUT} s")
        except Exception as exc:  # the connection failed: every command of the batch did
            error = exc
        else:
            for (_, future), reply in zip(batch, replies, strict=True):
                if not future.done():  # its caller may have given up
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
            return
        for _, future in batch:
            if not future.done():
                future.set_exception(error)


class HiredisPackingConnection(aioredis.Connection):
    """redis-py's asyncio connection packs commands in Python (a sixth of a cart write's CPU);
    its sync connection uses hiredis's packer when hiredis is installed. Same bytes on the wire."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


_batches: WeakKeyDictionary[asyncio.AbstractEventLoop, CommandBatch] = WeakKeyDictionary()
_last: tuple[asyncio.AbstractEventLoop, CommandBatch] | None = None  # the last loop's, found without hashing


def _batch() -> CommandBatch:
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last[0] is loop:
        return _last[1]
    batch = _batches.get(loop)
    if batch is None:
        # One client per event loop, since an asyncio connection belongs to the loop that opened it.
        client = aioredis.Redis.from_url(
            get_redis_url(), decode_responses=True, socket_connect_timeout=2, **reconnecting()
        )
        if client.connection_pool.connection_class is aioredis.Connection:  # plain TCP (not TLS, not a socket)
            client.connection_pool.connection_class = HiredisPackingConnection
        batch = _batches[loop] = CommandBatch(client)
    _last = (loop, batch)
    return batch


async def command(*args: Any) -> Any:
    """One command for the web door's coroutines (no threadpool hop; replies parsed by hiredis),
    pipelined with the others of this turn of the loop: `await command("HGETALL", key)`."""
    return await _batch().call(*args)


async def close_async_redis() -> None:
    """Close this loop's client (the app's lifespan, at shutdown)."""
    global _last
    batch = _batches.pop(asyncio.get_running_loop(), None)
    _last = None
    if batch is not None:
        await batch.client.aclose()
