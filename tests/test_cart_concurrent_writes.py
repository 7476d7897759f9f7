"""Concurrent writes to one cart (several tabs at once, over real HTTP to uvicorn) never lose an item, and
the stock check is atomic with the write: the cart never ends up holding more than is available."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests

from models.cart import store as cart
from models.tables import Product

SID = "two-tabs-session"
HEADERS = {"X-Session-ID": SID}


def product(sku: str, stock: int) -> int:
    return Product.create(sku=sku, name=sku, slug=sku.lower(), price=1000, stock_quantity=stock, tags=[], images=[]).id


def run_at_once(jobs: list[Callable[[], int]]) -> list[int]:
    """Start every job at the same moment (a barrier) and return their status codes."""
    barrier = threading.Barrier(len(jobs))
    results: list[int] = []
    lock = threading.Lock()

    def worker(job: Callable[[], int]) -> None:
        barrier.wait()
        status = job()
        with lock:
            results.append(status)

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def poster(base: str, path: str, payload: dict[str, Any], method: str = "post") -> Callable[[], int]:
    def job() -> int:
        with requests.Session() as session:
            return session.request(method, base + path, json=payload, headers=HEADERS, timeout=20).status_code

    return job


def test_concurrent_adds_of_one_product_are_all_counted(live_server: Any) -> None:
    tee = product("TEE-1", stock=1000)
    statuses = run_at_once(
        [poster(live_server.url, "/api/v1/cart/items", {"product_id": tee, "quantity": 1}) for _ in range(40)]
    )
    assert statuses == [200] * 40
    assert cart.get_quantities(SID) == {tee: 40}


def test_concurrent_adds_of_different_products_keep_every_line(live_server: Any) -> None:
    ids = [product(f"P-{n}", stock=10) for n in range(30)]
    statuses = run_at_once(
        [poster(live_server.url, "/api/v1/cart/items", {"product_id": pid, "quantity": 2}) for pid in ids]
    )
    assert statuses == [200] * 30
    assert cart.get_quantities(SID) == {pid: 2 for pid in ids}
    body = requests.get(live_server.url + "/api/v1/cart", headers=HEADERS, timeout=20).json()
    assert body["item_count"] == 60 and len(body["items"]) == 30


def test_concurrent_adds_never_exceed_the_stock(live_server: Any) -> None:
    scarce = product("LAST-5", stock=5)
    statuses = run_at_once(
        [poster(live_server.url, "/api/v1/cart/items", {"product_id": scarce, "quantity": 1}) for _ in range(25)]
    )
    assert Counter(statuses) == {200: 5, 409: 20}
    assert cart.get_quantities(SID) == {scarce: 5}


def test_adds_racing_removals_and_updates_leave_a_consistent_cart(live_server: Any) -> None:
    keep, churn = product("KEEP-1", stock=1000), product("CHURN-1", stock=1000)
    jobs = [poster(live_server.url, "/api/v1/cart/items", {"product_id": keep, "quantity": 1}) for _ in range(20)]
    jobs += [poster(live_server.url, f"/api/v1/cart/items/{churn}", {}, method="delete") for _ in range(5)]
    jobs += [poster(live_server.url, "/api/v1/cart/items", {"product_id": churn, "quantity": 1}) for _ in range(5)]
    statuses = run_at_once(jobs)
    assert statuses == [200] * 30
    quantities = cart.get_quantities(SID)
    assert quantities[keep] == 20
    assert 0 <= quantities.get(churn, 0) <= 5
