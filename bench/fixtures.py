"""What a run starts and loads before it measures: the services, the catalogue, the shoppers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def services() -> list[Any]:
    import embedded

    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get("BENCH_" + name):
            os.environ[name] = os.environ["BENCH_" + name]
        else:
            os.environ.pop(name, None)
    env, handles = embedded.start_services(ROOT / "var" / "bench", database="shop_bench")
    os.environ.update(env)
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))  # the bench's own, for this run
    return handles


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(products: int) -> list[int]:
    """Reset the catalogue to `products` rows with plenty of stock, and drop the carts earlier runs
    left in Redis (their lines name products that are gone) with their orders' "lines removed"
    markers (`cart-ordered:*`, of orders the truncated tables no longer hold); returns the
    products' ids."""
    from models.cart.store import ACTIVITY_KEY
    from models.infra.db import db
    from models.infra.redis_client import get_redis

    redis = get_redis()
    for pattern in ("cart:*", "cart-ordered:*"):
        for batch in _batches(redis.scan_iter(match=pattern, count=1000), 1000):
            redis.delete(*batch)
    redis.delete(ACTIVITY_KEY)

    db.obj.execute_sql(
        "TRUNCATE products, orders, order_items, order_events, idempotency_keys, email_log, stock_ledger CASCADE"
    )
    db.obj.execute_sql(f"""
        INSERT INTO products (sku, name, slug, description, price, stock_quantity, low_stock_threshold,
                              track_inventory, category, tags, images, is_published, is_featured,
                              created_at, updated_at)
        SELECT 'B-' || i, 'Bench item ' || i, 'bench-item-' || i, 'soft cotton ' || i, 1000 + i %% 50000,
               1000000, 5, true, 'cat-' || (i %% 20), jsonb_build_array('tag-' || (i %% 30)), '["/img.jpg"]',
               true, i %% 25 = 0, now() - i * interval '1 second', now()
        FROM generate_series(1, {products}) AS i""")
    # Each product's opening balance in the stock ledger, as a product created through the API has.
    db.obj.execute_sql("""INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor, note, at)
                          SELECT id, stock_quantity, stock_quantity, 'initial', 'system:bench', 'seed', now()
                          FROM products""")
    db.obj.execute_sql("ANALYZE products")
    return [pid for (pid,) in db.obj.execute_sql("SELECT id FROM products ORDER BY id").fetchall()]


def shoppers(count: int) -> list[str]:
    from models.accounts import service as accounts
    from models.tables import User

    hashed = accounts.hash_password("bench-password")
    tokens = []
    for index in range(count):
        user, _ = User.get_or_create(
            email=f"bench{index}@example.com", defaults={"full_name": "Bench", "hashed_password": hashed}
        )
        tokens.append(accounts.issue_tokens(user).access_token)
    return tokens


def fill_cart(shop: str, session: str, product_ids: list[int]) -> None:
    import httpx2 as httpx

    with httpx.Client(base_url=shop, headers={"X-Session-ID": session}) as http:
        for product_id in product_ids:
            http.post("/api/v1/cart/items", json={"product_id": product_id, "quantity": 1}).raise_for_status()
        assert len(http.get("/api/v1/cart").json()["items"]) == len(product_ids)
