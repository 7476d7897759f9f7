"""The Redis clients shared by the cart store, rate limits and token revocation."""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections import deque
from functools import lru_cache
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, unquote, urlsplit
from weakref import WeakKeyDictionary

import hiredis
import redis
from redis.exceptions import NoScriptError
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


class Script(NamedTuple):
    """A Lua script with its keys and arguments, for a caller that runs it in a round trip of its
    own choosing (models/infra/fences.close)."""

    source: str
    keys: list[str]
    args: list[Any]


def get_redis_url() -> str:
    url = get_settings().redis_url
    if not url:
        raise RuntimeError("REDIS_URL is not set (run through `python manage.py` for embedded defaults)")
    return url


def get_redis() -> redis.Redis:
    """The Redis holding carts and counters (REDIS_URL)."""
    return _client(get_redis_url())


ASYNC_TIMEOUT = 2.0  # seconds a batch of commands on the async client may take


def _as_dict(reply: Any) -> Any:
    """HGETALL's flat [field, value, ...] as a dict, as redis-py's callers are used to."""
    return dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else reply


TRANSFORMS: dict[str, Any] = {"HGETALL": _as_dict}


def _address(url: str) -> dict[str, Any]:
    """host/port or path, username, password and db from a redis://, rediss:// or unix:// URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    options: dict[str, Any] = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "db": int(query["db"][0]) if "db" in query else 0,
    }
    if parts.scheme == "unix":
        options["path"] = unquote(parts.path)
    else:
        options.update(host=parts.hostname or "localhost", port=parts.port or 6379)
        if parts.path.strip("/"):
            options["db"] = int(parts.path.strip("/"))
    return options


def _error(reply: hiredis.ReplyError) -> redis.RedisError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return redis.ResponseError(message)


class _Wire(asyncio.Protocol):
    """One connection to Redis for one event loop: commands are written back to back and replies,
    parsed by hiredis, are matched to them in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        # (caller's future, reply transform, deadline timer: on each batch's last command)
        self.waiting: deque[tuple[asyncio.Future[Any], Any, asyncio.TimerHandle | None]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future, transform, timer = self.waiting.popleft()
            if timer is not None:
                timer.cancel()
            if future.done():  # its caller gave up
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(reply))
            else:
                future.set_result(transform(reply) if transform else reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"Redis closed the connection: {exc or 'end of stream'}"))

    def fail(self, error: redis.RedisError) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.abort()
        while self.waiting:
            future, _, timer = self.waiting.popleft()
            if timer is not None:
                timer.cancel()
            if not future.done():
                future.set_exception(error)

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class CommandBatch:
    """Auto-pipelining for one event loop: the commands its coroutines issue in the same turn of
    the loop are written to Redis at once (one write), and each caller gets its own reply or error.

    Why not redis-py's asyncio client: on this path (the status poll's fences, the cart) it cost
    ~135 us of CPU per command issued alone and ~17 us in batches of 32 (its pipeline, retry and
    connection-pool layers); this connection costs ~50 us alone and ~7 us in batches, because it is
    one asyncio Protocol with hiredis (redis-py's own C parser) doing all the parsing and packing.
    Nothing waits to fill a batch: an idle process sends batches of one. A batch has a deadline of
    ASYNC_TIMEOUT (redis.TimeoutError, and the connection is dropped: its replies could no longer
    be matched); a lost connection fails what was in flight with redis.ConnectionError and the next
    command connects again."""

    def __init__(self, url: str) -> None:
        self.options = _address(url)
        self.scheme = url.split("://", 1)[0]
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._wire: _Wire | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._ready: list[list[tuple[tuple[Any, ...], asyncio.Future[Any]]]] = []

    def call(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)  # after the coroutines runnable in this turn have had their say
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._send(batch)

    def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        wire = self._wire
        if wire is None or not wire.open:
            self._ready.append(batch)
            if self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return
        self._write(wire, batch)

    def _write(self, wire: _Wire, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        timer = asyncio.get_running_loop().call_later(ASYNC_TIMEOUT, self._expire, wire)
        last = len(batch) - 1
        wire.waiting.extend(
            (future, TRANSFORMS.get(str(args[0]).upper()), timer if index == last else None)
            for index, (args, future) in enumerate(batch)
        )
        assert wire.transport is not None
        wire.transport.write(b"".join(hiredis.pack_command(args) for args, _ in batch))

    @staticmethod
    def _expire(wire: _Wire) -> None:
        """A batch's last reply did not come in time (its timer was not cancelled by the reply)."""
        wire.fail(redis.TimeoutError(f"no answer from Redis within {ASYNC_TIMEOUT} s"))

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            async with asyncio.timeout(ASYNC_TIMEOUT):
                sock = await self._socket(loop)
                if "path" in options:
                    _, wire = await loop.create_unix_connection(_Wire, sock=sock)
                else:
                    tls = self.scheme == "rediss"
                    _, wire = await loop.create_connection(
                        _Wire, sock=sock, ssl=tls or None, server_hostname=options["host"] if tls else None
                    )
                hello: list[tuple[Any, ...]] = []
                if options.get("password"):
                    hello.append(("AUTH", *filter(None, (options.get("username"), options["password"]))))
                if options.get("db"):
                    hello.append(("SELECT", options["db"]))
                if hello:
                    futures = [loop.create_future() for _ in hello]
                    wire.waiting.extend((future, None, None) for future in futures)
                    assert wire.transport is not None
                    wire.transport.write(b"".join(hiredis.pack_command(args) for args in hello))
                    await asyncio.gather(*futures)
        except Exception as exc:
            error = exc if isinstance(exc, redis.RedisError) else redis.ConnectionError(f"cannot reach Redis: {exc!r}")
            batches, self._ready, self._connecting = self._ready, [], None
            for batch in batches:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            return
        self._wire, self._connecting = wire, None
        batches, self._ready = self._ready, []
        for batch in batches:
            self._write(wire, batch)

    async def _socket(self, loop: asyncio.AbstractEventLoop) -> socket.socket:
        """A connected socket, closed for sure once this batch is gone: an event loop that ends
        (asyncio.run in a script or a test) does not close its transports, and a socket left to
        the garbage collector would warn."""
        options = self.options
        if "path" in options:
            sock, address = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), options["path"]
        else:
            family = socket.AF_INET6 if ":" in options["host"] else socket.AF_INET
            sock, address = socket.socket(family, socket.SOCK_STREAM), (options["host"], options["port"])
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        weakref.finalize(self, sock.close)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        return sock

    async def close(self) -> None:
        if self._wire is not None and self._wire.transport is not None:
            self._wire.transport.close()
        self._wire = None


_batches: WeakKeyDictionary[asyncio.AbstractEventLoop, CommandBatch] = WeakKeyDictionary()
_last: tuple[asyncio.AbstractEventLoop, CommandBatch] | None = None  # the last loop's, found without hashing


def _batch() -> CommandBatch:
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last[0] is loop:
        return _last[1]
    batch = _batches.get(loop)
    if batch is None:
        # One connection per event loop, since an asyncio transport belongs to the loop that opened it.
        batch = _batches[loop] = CommandBatch(get_redis_url())
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
        await batch.close()
