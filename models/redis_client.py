"""The Redis client shared by the cart store, rate limits and token revocation."""

from __future__ import annotations

from functools import lru_cache

import redis

from models.settings import get_settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    """The Redis holding carts and counters (REDIS_URL)."""
    url = get_settings().redis_url
    if not url:
        raise RuntimeError("REDIS_URL is not set (run through `python manage.py` for embedded defaults)")
    return _client(url)
