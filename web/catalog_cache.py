"""A per-process cache of rendered catalogue responses for anonymous storefront reads.

Why: a catalogue is read far more than written, and a hit here costs no threadpool hop and no
query. Staleness is bounded two ways: entries live CATALOG_CACHE_TTL seconds (default 2), which is
how long a listing's stock figures may lag reservations (adding to a cart and reserving always
read the database, so nothing can oversell); and an administrator's create/update/delete clears
this process's cache at once and, through a Redis channel, every other web process's.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from models.redis_client import get_redis
from models.settings import get_settings
from web.subscriptions import Subscription

log = logging.getLogger("shop.catalog_cache")
CHANNEL = "catalog-changed"
MAX_ENTRIES = 2000
_entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()


def get(key: str) -> bytes | None:
    """The cached body for key, if fresh."""
    entry = _entries.get(key)
    if entry is None:
        return None
    expires, body = entry
    if expires < time.monotonic():
        _entries.pop(key, None)
        return None
    _entries.move_to_end(key)
    return body


def put(key: str, body: bytes) -> None:
    ttl = get_settings().catalog_cache_ttl
    if ttl <= 0:
        return
    _entries[key] = (time.monotonic() + ttl, body)
    _entries.move_to_end(key)
    while len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)


def clear() -> None:
    _entries.clear()


def invalidate() -> None:
    """After an administrator's write commits: forget here, and tell the other web processes."""
    clear()
    try:
        get_redis().publish(CHANNEL, "1")
    except Exception:  # Redis down: the others catch up within the TTL
        log.warning("could not announce a catalogue change; other processes refresh within the TTL")


# An administrator's write in another process clears this one's cache; so does a dropped
# connection, since announcements may have been missed meanwhile.
subscription = Subscription(CHANNEL, lambda _data: clear(), on_gap=clear)
