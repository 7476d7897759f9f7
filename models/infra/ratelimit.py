"""Rate limits kept in Redis (the `limits` library's moving window), shared by every web process."""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from models.errors import RateLimited
from models.infra.redis_client import reconnecting
from models.infra.settings import get_settings


@lru_cache(maxsize=4)
def _limiter(url: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(RedisStorage(url, socket_timeout=2, socket_connect_timeout=2, **reconnecting()))


@lru_cache(maxsize=32)
def _item(spec: str) -> RateLimitItem:
    return parse(spec)


def _retry_after(limiter: MovingWindowRateLimiter, item: RateLimitItem, keys: tuple[str, ...]) -> int:
    reset_at, _remaining = limiter.get_window_stats(item, *keys)
    return max(1, math.ceil(reset_at - time.time()))


def check(spec: str, *keys: str) -> None:
    """Raise RateLimited if the window for keys is already full (does not count this call)."""
    limiter, item = _limiter(get_settings().redis_url), _item(spec)
    if not limiter.test(item, *keys):
        raise RateLimited(_retry_after(limiter, item, keys))


def hit(spec: str, *keys: str) -> None:
    """Count one event for keys; raise RateLimited if that went over the limit."""
    limiter, item = _limiter(get_settings().redis_url), _item(spec)
    if not limiter.hit(item, *keys):
        raise RateLimited(_retry_after(limiter, item, keys))


def reset() -> None:
    """Forget every counter (tests, and operators unblocking a locked-out customer)."""
    _limiter(get_settings().redis_url).storage.reset()
