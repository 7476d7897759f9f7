"""Celery's Redis transport, with redis-py clients that replace a connection Redis has closed, and
one client per channel instead of one per command.

kombu builds its own redis-py connection pools. redis-py 8 hands out pooled connections without
checking that they are still open while its "maintenance notifications" are on (the default),
so after Redis restarts, the first publish (or control command) of each process fails on a dead
connection.

kombu builds a new redis-py client object for each command it sends outside its consumer's own
client: each task publish, task event, ack. Constructing one (its table of response callbacks)
cost about 0.2 ms of CPU, as much as the command itself; a channel is used by one thread at a
time and its client draws connections from the channel's pool, so one per channel serves.

Installed under kombu's own names for Redis (celeryconfig.py imports this module), so
broker URLs, banners and Flower's broker pages still say `redis://`."""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

from models.infra.redis_client import reconnecting


class Channel(kombu_redis.Channel):
    _command_client: Any = None  # the channel's own, made on its first command

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # kombu's _connparams has no annotations (the rest of kombu has).
        params: dict[str, Any] = super()._connparams(asynchronous)  # type: ignore[no-untyped-call]
        params.update(reconnecting())
        return params

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # kombu keeps these itself (the consumer's client and its pub/sub)
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        if self._command_client is None:
            self._command_client = super()._create_client()  # type: ignore[no-untyped-call]
        return self._command_client


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make `redis://` and `rediss://` broker URLs use this transport (idempotent)."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
