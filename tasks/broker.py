"""Celery's Redis transport, with redis-py clients that replace a connection Redis has closed.

kombu builds its own redis-py connection pools. redis-py 8 hands out pooled connections without
checking that they are still open while its "maintenance notifications" are on (the default),
so after Redis restarts, the first publish (or control command) of each process fails on a dead
connection. Installed under kombu's own names for Redis (celeryconfig.py imports this module), so
broker URLs, banners and Flower's broker pages still say `redis://`."""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

from models.infra.redis_client import reconnecting


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # kombu's _connparams has no annotations (the rest of kombu has).
        params: dict[str, Any] = super()._connparams(asynchronous)  # type: ignore[no-untyped-call]
        params.update(reconnecting())
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make `redis://` and `rediss://` broker URLs use this transport (idempotent)."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
