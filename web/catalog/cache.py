"""A per-process cache of the catalogue for anonymous storefront reads and cart pricing.

Why: a catalogue is read far more than written, and a hit here costs no threadpool hop and no
query. What is kept, and how it is kept true:
- Product pages (by id and by slug) and the rows that price carts and check additions: until the
  product changes. PostgreSQL announces every committed change to products (migration 004; see
  PgSubscription), so a checkout reserving stock in a worker, or a review changing its rating, drops
  that product's entries in every web process within milliseconds of its commit. CATALOG_PRODUCT_TTL
  (default 60 s) is only a safety net, and applies only while this process is listening: without
  the listener, entries live CATALOG_CACHE_TTL. Each entry keeps a random 75-100% of that TTL, so
  the pages filled together (after a clear, say) do not all expire, and all go to the database,
  in the same second.
- Listings: CATALOG_CACHE_TTL seconds (default 2), since a stock change can move products in or
  out of a filtered page. Their stock figures may lag reservations by that much (adding to a cart
  and reserving always check again, so nothing can oversell).
- Any other change (an administrator's edit, a new or deleted product) clears everything, in this
  process at once and in the others through the same announcement; so does a dropped listener
  connection, since announcements may have been missed meanwhile.
A render that began before a change it may not have seen is never kept, nor shared with requests
that arrive after the change.

Each app owns one CatalogCache (web/app.py's create_app puts it on app.state.catalog; routes reach
it as request.app.state.catalog), with the PostgreSQL subscription that keeps it true, started by
the app's lifespan: two apps in one process never share entries.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from models.cart import store as cart
from models.cart.store import PricingRow
from models.catalog.queries import PRODUCTS_CHANNEL
from models.infra.settings import get_settings
from web.api import run
from web.subscriptions import PgSubscription

MAX_ENTRIES = 2000
MAX_ROWS = 50000
TTL_SPREAD = 0.25  # a product entry lives (1 - TTL_SPREAD .. 1) x its TTL: see _expires
T = TypeVar("T")


class CatalogCache:
    """Product pages, listings and cart pricing rows of one app, kept true by `subscription`."""

    def __init__(self) -> None:
        # key -> (expires, body, product id or None for a listing)
        self._entries: OrderedDict[str, tuple[float, bytes, int | None]] = OrderedDict()
        self._keys_of: dict[int, set[str]] = {}  # product id -> its page entries' keys (by id, by slug)
        # Cart pricing rows by product id; None: no such published product (a cart may hold a line
        # of one deleted or unpublished since: known absent, it costs no query per read either).
        self._rows: dict[int, tuple[float, PricingRow | None]] = {}
        self._in_flight: dict[tuple[int, int, int, str], asyncio.Future[object]] = {}
        # _generation: bumped by clear(). _clock: bumped by every announcement; _changed_at[id] is
        # the _clock of the product's last one. A render that started at clock c may be kept for
        # product p only if p has not changed since c, and for a listing only if nothing was
        # cleared since it started.
        self._generation = 0
        self._clock = 0
        self._changed_at: dict[int, int] = {}
        # Every web process listens; the announcements come from PostgreSQL, whoever wrote.
        self.subscription = PgSubscription(PRODUCTS_CHANNEL, self.on_announcement, on_gap=self.clear)

    def get(self, key: str) -> bytes | None:
        """The cached body for key, if fresh."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def through(self, key: str | None, render: Callable[[], Awaitable[bytes]]) -> bytes:
        """A listing's body for key (kept CATALOG_CACHE_TTL seconds); see through_product."""

        async def unowned() -> tuple[bytes, None]:
            return await render(), None

        return await self.through_product(key, unowned)

    async def through_product(
        self, key: str | None, render: Callable[[], Awaitable[tuple[bytes, int | None]]]
    ) -> bytes:
        """The body for key: from the cache, or rendered once however many requests ask for it at the
        same moment (when an entry expires under load, one request reads the database, not all of
        them). render returns the body and the id of the product it shows, and the entry is kept until
        that product changes (None: a listing, kept CATALOG_CACHE_TTL seconds). key None: not
        cacheable (a signed-in caller), always rendered."""
        if key is None:
            return (await render())[0]
        body = self.get(key)
        if body is not None:
            return body
        generation, clock = self._generation, self._clock

        async def render_and_keep() -> bytes:
            body, product_id = await render()
            if self._unchanged_since(generation, clock, product_id):
                ttl = get_settings().catalog_cache_ttl if product_id is None else self._product_ttl()
                self._put(key, body, product_id, ttl)
            return body

        return await self._once(key, render_and_keep)

    def _unchanged_since(self, generation: int, clock: int, product_id: int | None) -> bool:
        """Nothing was cleared since generation, nor (for a product) was the product announced since clock."""
        return generation == self._generation and (product_id is None or self._changed_at.get(product_id, -1) <= clock)

    def _product_ttl(self) -> float:
        settings = get_settings()
        if settings.catalog_cache_ttl <= 0 or not self.subscription.subscribed.is_set():
            return settings.catalog_cache_ttl
        return max(settings.catalog_product_ttl, settings.catalog_cache_ttl)

    async def _once(self, key: str, produce: Callable[[], Awaitable[T]]) -> T:
        """produce() once for every caller in this event loop that asks for key while it runs; if it
        fails (a 404, say), each waiting caller finds out for itself. A caller arriving after a change
        does not join a render that began before it."""
        loop = asyncio.get_running_loop()
        flight = (id(loop), self._generation, self._clock, key)
        pending = self._in_flight.get(flight)
        if pending is not None:
            await asyncio.wait({pending})
            if not pending.cancelled():
                return cast(T, pending.result())
            return await produce()
        future: asyncio.Future[object] = loop.create_future()
        self._in_flight[flight] = future
        try:
            value = await produce()
        except BaseException:
            future.cancel()
            raise
        finally:
            self._in_flight.pop(flight, None)
        future.set_result(value)
        return value

    def _put(self, key: str, body: bytes, product_id: int | None, ttl: float) -> None:
        if ttl <= 0:
            return
        self._drop(key)
        expires = time.monotonic() + ttl if product_id is None else _expires(ttl)
        self._entries[key] = (expires, body, product_id)
        if product_id is not None:
            self._keys_of.setdefault(product_id, set()).add(key)
        while len(self._entries) > MAX_ENTRIES:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry[2] is not None:
            keys = self._keys_of.get(entry[2])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_of[entry[2]]

    def clear(self) -> None:
        """Forget everything (an administrator's write, a gap in the announcements)."""
        self._generation += 1
        self._entries.clear()
        self._keys_of.clear()
        self._rows.clear()
        self._changed_at.clear()  # renders that began before this cannot be kept anyway

    def forget_product(self, product_id: int) -> None:
        """The product's stock or rating changed: drop its pages and pricing row (listings keep their TTL)."""
        self._clock += 1
        self._changed_at[product_id] = self._clock
        for key in list(self._keys_of.get(product_id, ())):
            self._drop(key)
        self._rows.pop(product_id, None)

    def on_announcement(self, payload: str) -> None:
        """A committed change to products (the payloads of migrations 004 and 010)."""
        kind, _, product_id = payload.partition(":")
        if kind in ("stock", "rating") and product_id.isdigit():
            self.forget_product(int(product_id))
        else:
            self.clear()

    async def cart_rows(self, product_ids: list[int]) -> dict[int, PricingRow]:
        """The pricing rows of the published products among product_ids (models.cart.RowLookup): from
        this cache, reading only the missing ones from the database (one query)."""
        now = time.monotonic()
        found: dict[int, PricingRow] = {}
        missing = []
        for product_id in product_ids:
            entry = self._rows.get(product_id)
            if entry is not None and entry[0] >= now:
                if entry[1] is not None:
                    found[product_id] = entry[1]
            else:
                missing.append(product_id)
        if missing:
            found.update(await self._once("rows:" + ",".join(map(str, missing)), lambda: self._fetch_rows(missing)))
        return found

    async def _fetch_rows(self, product_ids: list[int]) -> dict[int, PricingRow]:
        generation, clock = self._generation, self._clock
        fetched: dict[int, PricingRow] = await run(cart.pricing_rows, product_ids)
        ttl = self._product_ttl()
        if ttl > 0:
            if len(self._rows) + len(product_ids) > MAX_ROWS:
                self._rows.clear()
            self._rows.update(
                (product_id, (_expires(ttl), fetched.get(product_id)))
                for product_id in product_ids
                if self._unchanged_since(generation, clock, product_id)
            )
        return fetched


def _expires(ttl: float) -> float:
    """When a product's entry, filled now, expires: within its TTL, spread over the last quarter of
    it, so that entries filled together are read again from the database over seconds, not at once."""
    return time.monotonic() + ttl * (1 - TTL_SPREAD * random.random())
