"""The catalogue cache (one per app): anonymous reads are served without the database; any committed
change to a product (an admin's, a worker's reservation, plain SQL) reaches every process's cache
through PostgreSQL's announcement; listings lag stock by at most CATALOG_CACHE_TTL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg2
import pytest

from models.catalog.queries import PRODUCTS_CHANNEL
from models.infra.db import connect_params, db, init_db
from models.infra.settings import get_settings
from models.tables import Product
from tests.support import wait_for
from web.catalog.cache import CatalogCache

API = "/api/v1/products"


@pytest.fixture
def item() -> Product:
    return Product.create(
        sku="SKU-1",
        name="Linen Shirt",
        slug="linen-shirt",
        price=30000,
        stock_quantity=5,
        category="tops",
        tags=[],
        images=[],
    )


def _cache(client: Any) -> CatalogCache:
    """The catalogue cache of the app this client talks to."""
    cache: CatalogCache = client.app.state.catalog
    return cache


def _listening(client: Any) -> None:
    wait_for(_cache(client).subscription.subscribed.is_set, what="the listener to subscribe")


def _heard_everything_so_far(cache: CatalogCache) -> None:
    """Wait until the cache's listener has handled every announcement committed so far (the insert
    of the `item` fixture, say, which may reach it at any moment): PostgreSQL delivers
    notifications in commit order, so once a marker sent now has arrived, the earlier ones have."""
    clock = cache._clock
    db.obj.execute_sql("SELECT pg_notify(%s, 'stock:0')", (PRODUCTS_CHANNEL,))  # no product has id 0
    wait_for(lambda: cache._clock > clock, what="the marker announcement")


def _quiet(client: Any) -> CatalogCache:
    """The client's cache, listening, with every announcement so far behind it; returns the cache."""
    _listening(client)
    _heard_everything_so_far(_cache(client))
    return _cache(client)


def test_a_cached_listing_needs_no_database(client: Any, item: Product) -> None:
    _quiet(client)  # subscribing and the fixture's insert clear the cache: cache after them
    first = client.get(API, params={"category": "tops"})
    assert first.status_code == 200 and first.json()["total"] == 1
    original = db.obj
    init_db("postgresql://postgres@127.0.0.1:1/nowhere")  # the database is gone
    try:
        again = client.get(API, params={"category": "tops"})
        by_id = client.get(f"{API}/{item.id}")
    finally:
        db.obj.close_all()
        db.initialize(original)
    assert again.status_code == 200 and again.json() == first.json()
    assert by_id.status_code == 503  # never read before, so not cached


def test_an_admin_update_shows_at_once(client: Any, item: Product, admin_headers: dict[str, str]) -> None:
    assert client.get(f"{API}/{item.id}").json()["price"] == 30000
    assert client.patch(f"{API}/{item.id}", json={"price": 25000}, headers=admin_headers).status_code == 200
    assert client.get(f"{API}/{item.id}").json()["price"] == 25000
    assert client.get(API).json()["items"][0]["price"] == 25000


def test_a_change_committed_anywhere_clears_this_cache(client: Any, item: Product) -> None:
    cache = _quiet(client)  # the fixture's insert may not clear what this test caches
    client.get(API)
    assert client.get(f"{API}/{item.id}").json()["name"] == "Linen Shirt"
    assert cache._entries
    # An administrator's edit made by another process, or by hand: no HTTP request to this one.
    Product.update(name="Linen Shirt II").where(Product.id == item.id).execute()
    wait_for(lambda: not _cache(client)._entries, what="the cache to be cleared")
    assert client.get(f"{API}/{item.id}").json()["name"] == "Linen Shirt II"


def test_a_reservation_shows_on_the_product_page_at_once(
    client: Any, item: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_CACHE_TTL", "60")  # so that only the announcement can explain the change
    get_settings.cache_clear()
    try:
        _quiet(client)  # the fixture's insert may not clear what this test caches
        assert client.get(f"{API}/{item.id}").json()["available_quantity"] == 5
        listing = client.get(API).json()
        assert _cache(client).get(f"id:{item.id}") is not None
        Product.update(stock_quantity=2).where(Product.id == item.id).execute()  # a worker reserving 3
        wait_for(
            lambda: client.get(f"{API}/{item.id}").json()["available_quantity"] == 2,
            timeout=15,
            what="the page to show the reservation",
        )
        assert client.get(API).json() == listing  # a stock change leaves listings to their TTL
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_listings_lag_stock_by_at_most_the_ttl(client: Any, item: Product, monkeypatch: pytest.MonkeyPatch) -> None:
    # The TTL is long enough that the second read comes before it even on a loaded machine (0.3 s
    # was not), and short enough to wait for.
    monkeypatch.setenv("CATALOG_CACHE_TTL", "3")
    get_settings.cache_clear()
    try:
        _quiet(client)  # the fixture's insert, announced late, would clear what we cache now
        assert client.get(API).json()["items"][0]["available_quantity"] == 5
        Product.update(stock_quantity=0).where(Product.id == item.id).execute()  # reserved by checkouts
        assert client.get(API).json()["items"][0]["available_quantity"] == 5  # still cached
        wait_for(
            lambda: client.get(API).json()["items"][0]["available_quantity"] == 0,
            timeout=15,
            what="the entry to expire",
        )
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_postgres_announces_stock_changes_and_other_changes_apart(item: Product) -> None:
    name, params = connect_params(get_settings().database_url)
    listener = psycopg2.connect(dbname=name, **params)  # type: ignore[arg-type]
    listener.autocommit = True
    try:
        with listener.cursor() as cursor:
            cursor.execute(f"LISTEN {PRODUCTS_CHANNEL}")

        def heard() -> list[str]:
            listener.poll()
            payloads = [n.payload for n in listener.notifies]
            listener.notifies.clear()
            return payloads

        Product.update(stock_quantity=Product.stock_quantity - 1).where(Product.id == item.id).execute()
        assert wait_for(heard, what="the stock announcement") == [f"stock:{item.id}"]
        Product.update(price=1).where(Product.id == item.id).execute()
        assert wait_for(heard, what="the edit's announcement") == ["*"]
        Product.create(
            sku="SKU-2", name="Cap", slug="cap", price=1, stock_quantity=1, category="hats", tags=[], images=[]
        )
        assert wait_for(heard, what="the insert's announcement") == ["*"]
        with db.atomic() as transaction:
            Product.update(stock_quantity=0).where(Product.id == item.id).execute()
            transaction.rollback()
        Product.update(price=2).where(Product.id == item.id).execute()  # a marker after the rollback
        assert wait_for(heard, what="the marker") == ["*"]  # a rolled-back change announced nothing
    finally:
        listener.close()


def test_without_the_listener_product_entries_live_only_the_listing_ttl() -> None:
    cache = CatalogCache()
    assert not cache.subscription.subscribed.is_set()  # no app lifespan started its listener
    assert cache._product_ttl() == get_settings().catalog_cache_ttl


def test_admins_and_signed_in_users_bypass_the_cache(client: Any, item: Product, admin_headers: dict[str, str]) -> None:
    client.get(f"{API}/{item.id}")
    Product.update(cost_price=100).where(Product.id == item.id).execute()
    assert client.get(f"{API}/{item.id}", headers=admin_headers).json()["cost_price"] == 100
    assert "cost_price" not in client.get(f"{API}/{item.id}").json()
    bad = client.get(f"{API}/{item.id}", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401


def test_requests_arriving_together_render_an_entry_once() -> None:
    calls: list[str] = []

    async def render() -> bytes:
        calls.append("render")
        await asyncio.sleep(0.05)  # the database query, during which the others arrive
        return b"[1, 2, 3]"

    cache = CatalogCache()

    async def scenario() -> list[bytes]:
        return await asyncio.gather(*(cache.through("list:together", render) for _ in range(20)))

    assert asyncio.run(scenario()) == [b"[1, 2, 3]"] * 20
    assert calls == ["render"]


def test_when_the_first_render_fails_the_others_find_out_for_themselves() -> None:
    calls: list[str] = []

    async def render() -> bytes:
        calls.append("render")
        await asyncio.sleep(0.05)
        raise LookupError("no such product")

    cache = CatalogCache()

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(cache.through("list:404", render) for _ in range(3)), return_exceptions=True)

    assert all(isinstance(result, LookupError) for result in asyncio.run(scenario()))
    assert len(calls) == 3  # failures are not cached or shared
    assert cache.get("list:404") is None


def test_carts_read_together_look_their_products_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.cart import store as cart

    item = Product.create(
        sku="SKU-1",
        name="Linen Shirt",
        slug="linen-shirt",
        price=30000,
        stock_quantity=5,
        category="tops",
        tags=[],
        images=[],
    )
    queries: list[list[int]] = []
    real = cart.pricing_rows

    def counted(product_ids: list[int]) -> dict[int, Any]:
        queries.append(product_ids)
        return real(product_ids)  # the real query, on the real database

    monkeypatch.setattr(cart, "pricing_rows", counted)
    cache = CatalogCache()  # not listening: nothing but this test touches it

    async def scenario() -> list[dict[int, Any]]:
        return await asyncio.gather(*(cache.cart_rows([item.id]) for _ in range(20)))

    results = asyncio.run(scenario())
    assert queries == [[item.id]]
    assert all(rows[item.id][1] == "Linen Shirt" for rows in results)
    asyncio.run(cache.cart_rows([item.id]))
    assert queries == [[item.id]]  # the next read is served from the cache


def test_a_render_that_began_before_an_admin_write_is_not_kept() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_render() -> bytes:
        started.set()
        await release.wait()  # the query ran before the admin's write committed
        return b"old"

    cache = CatalogCache()

    async def scenario() -> tuple[bytes, bytes]:
        first = asyncio.ensure_future(cache.through("list:race", slow_render))
        await started.wait()
        cache.clear()  # the admin's write commits meanwhile

        async def fresh_render() -> bytes:
            return b"new"

        after = await cache.through("list:race", fresh_render)  # not joined to the old render
        release.set()
        return await first, after

    assert asyncio.run(scenario()) == (b"old", b"new")
    assert cache.get("list:race") == b"new"


def test_a_page_render_that_began_before_a_stock_change_is_not_kept() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_render() -> tuple[bytes, int]:
        started.set()
        await release.wait()  # read before the reservation committed
        return b"old", 7

    cache = CatalogCache()

    async def scenario() -> tuple[bytes, bytes]:
        first = asyncio.ensure_future(cache.through_product("id:7", slow_render))
        await started.wait()
        cache.on_announcement("stock:7")

        async def fresh_render() -> tuple[bytes, int]:
            return b"new", 7

        after = await cache.through_product("id:7", fresh_render)  # not joined to the old render
        release.set()
        return await first, after

    assert asyncio.run(scenario()) == (b"old", b"new")
    assert cache.get("id:7") == b"new"
    cache.on_announcement("stock:8")  # another product's change leaves this one's page alone
    assert cache.get("id:7") == b"new"
    cache.on_announcement("stock:7")
    assert cache.get("id:7") is None


def test_a_dropped_listener_clears_the_cache_and_listens_again(client: Any, item: Product) -> None:
    page, key = f"{API}/{item.id}", f"id:{item.id}"
    cache = _quiet(client)  # from here on, only this test's own writes are announced
    client.get(page)
    assert cache.get(key) is not None
    generation = cache._generation
    (killed,) = db.obj.execute_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE query = %s AND datname = current_database()",
        (f'LISTEN "{PRODUCTS_CHANNEL}"',),
    ).fetchone()
    assert killed >= 1
    # The gap: the listener knows at once that it is not subscribed, and the cache is emptied.
    wait_for(
        lambda: (
            cache._generation > generation and cache.get(key) is None and not cache.subscription.subscribed.is_set()
        ),
        what="the gap to clear the cache",
    )
    _listening(client)  # a new connection, LISTENing (it clears the cache again as it subscribes)
    wait_for(lambda: client.get(page).json() and cache.get(key) is not None, what="the page to be cached again")
    Product.update(stock_quantity=1).where(Product.id == item.id).execute()
    # The page is kept for CATALOG_PRODUCT_TTL (60 s) while listening: only the announcement, heard
    # by the new connection, can drop it this soon.
    wait_for(
        lambda: client.get(page).json()["available_quantity"] == 1,
        timeout=15,
        what="the new listener to hear the next change",
    )


def test_a_cart_line_of_a_product_gone_costs_no_query_per_read(client: Any, item: Product) -> None:
    """A cart may outlive a product in it (deleted or unpublished since): the product is known absent
    until the catalogue changes again, instead of being looked for on every read of that cart."""
    session = {"X-Session-ID": "cart-of-a-gone-product"}
    assert (
        client.post("/api/v1/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session).status_code
        == 200
    )
    Product.delete().where(Product.id == item.id).execute()
    _quiet(client)  # the delete's announcement has cleared the cache
    first = client.get("/api/v1/cart", headers=session)
    assert first.status_code == 200
    original = db.obj
    init_db("postgresql://postgres@127.0.0.1:1/nowhere")  # the database is gone
    try:
        again = client.get("/api/v1/cart", headers=session)
    finally:
        db.obj.close_all()
        db.initialize(original)
    assert again.status_code == 200 and again.json() == first.json()


def test_product_entries_filled_together_do_not_expire_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages filled in the same second (after a clear, say) must not all expire, and all be read from
    the database again, in the same second: each keeps a random 75-100% of its TTL, never more.
    The cart's pricing rows, filled in one query, are spread the same way."""
    from models.cart import store as cart

    monkeypatch.setenv("CATALOG_CACHE_TTL", "40")  # without the listener, product entries live this
    get_settings.cache_clear()
    try:
        cache = CatalogCache()
        filled = time.monotonic()

        def page(product_id: int) -> Any:
            async def render() -> tuple[bytes, int]:
                return b"{}", product_id

            return render

        async def fill() -> None:
            for product_id in range(1, 201):
                await cache.through_product(f"id:{product_id}", page(product_id))

        asyncio.run(fill())
        expiries = [entry[0] - filled for entry in cache._entries.values()]
        assert len(expiries) == 200
        assert all(30 - 1 <= seconds <= 40 + 1 for seconds in expiries)
        assert max(expiries) - min(expiries) > 5  # spread over seconds, not filled-time apart

        monkeypatch.setattr(cart, "pricing_rows", lambda product_ids: {})  # every product gone
        asyncio.run(cache.cart_rows(list(range(1, 201))))
        expiries = [expires - filled for expires, _ in cache._rows.values()]
        assert len(expiries) == 200 and all(30 - 1 <= seconds <= 40 + 1 for seconds in expiries)
        assert max(expiries) - min(expiries) > 5
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
