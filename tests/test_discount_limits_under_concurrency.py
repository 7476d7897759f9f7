"""A discount's usage limits hold under concurrency exactly as stock does: 50 shoppers check out at
once with a code that has 10 uses left, over real HTTP with a real worker, and exactly 10 orders
hold it; the claim itself, raced from many threads without the queue's serialisation, never
overshoots the total or a customer's limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from models import events
from models.infra.db import db
from models.orders import pipeline
from models.tables import Discount, DiscountUse, Order, OrderItem, Product
from tests.support import checkout_body
from tests.test_oversell_under_concurrency import fill_cart, settle

pytestmark = pytest.mark.pipeline
API = "/api/v1"


def test_fifty_checkouts_for_ten_uses_left(live_server: Any, worker: Any, make_user: Any) -> None:
    import httpx2 as httpx

    item = Product.create(
        sku="PLENTY", name="Plenty", slug="plenty", price=10000, stock_quantity=500, tags=[], images=[]
    )
    code = Discount.create(code="LAST10", kind="fixed", value=1000, usage_limit=15, used_count=5)
    shoppers = [make_user()[1] for _ in range(50)]
    for i in range(50):
        fill_cart(live_server.url, i, [(item.id, 1)])

    def checkout(i: int) -> int | None:
        """The order's id, or None when the checkout itself was refused: the worker claims uses while
        shoppers are still ordering, so a late shopper may already be told the code is used up."""
        with httpx.Client(base_url=live_server.url, timeout=120) as http:  # a loaded machine: correctness only
            response = http.post(
                f"{API}/orders",
                json=checkout_body(discount_code="last10"),
                headers={**shoppers[i], "X-Session-ID": f"session-{i:04d}"},
            )
            if response.status_code == 422:
                assert response.json()["error"]["code"] == "discount_exhausted", response.text
                return None
            assert response.status_code == 202, response.text
            assert response.json()["discount_amount"] == 1000
            return int(response.json()["id"])

    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(checkout, range(50)))
    ids = [order_id for order_id in answers if order_id is not None]
    counts = settle(ids)
    assert counts.get("reserved") == 10 and counts.get("failed", 0) == len(ids) - 10, counts
    held = Order.select().where(Order.id.in_(ids), Order.discount_held == True)  # noqa: E712
    assert held.count() == 10 and {o.status for o in held} == {"reserved"}
    failed = Order.select().where(Order.id.in_(ids), Order.status == "failed")
    assert {o.failure_reason for o in failed} <= {"discount_exhausted"}
    assert not any(o.stock_held for o in failed)
    assert Discount.get_by_id(code.id).used_count == 15
    assert Product.get_by_id(item.id).stock_quantity == 500 - 10


def _orders(users: list[Any], product: Product, code: Discount, per_user: int) -> list[int]:
    ids = []
    for user in users:
        for n in range(per_user):
            order = Order.create(
                order_number=f"T-{user.id}-{n}",
                user=user.id,
                currency="KRW",
                subtotal=1000,
                discount_amount=100,
                total=900,
                shipping_address={},
                shipping_method="standard",
                payment_method="dummy",
                payment_gateway="dummy",
                discount=code.id,
                discount_code=code.code,
            )
            OrderItem.create(
                order=order.id,
                product=product.id,
                product_name="x",
                product_sku="x",
                unit_price=1000,
                quantity=1,
                subtotal=1000,
            )
            ids.append(order.id)
    return ids


def _reserve_all(order_ids: list[int]) -> None:
    def reserve(order_id: int) -> None:
        with db.obj.connection_context(), events.collecting():
            pipeline.reserve_stock(order_id)

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(reserve, order_ids))


def test_direct_claims_from_many_threads_never_overshoot_the_total(make_user: Any) -> None:
    users = [make_user()[0] for _ in range(40)]
    product = Product.create(sku="T-1", name="T", slug="t-1", price=1000, stock_quantity=1000, tags=[], images=[])
    code = Discount.create(code="SEVEN", kind="percent", value=10, usage_limit=7)
    ids = _orders(users, product, code, 1)
    _reserve_all(ids)
    assert Order.select().where(Order.id.in_(ids), Order.discount_held == True).count() == 7  # noqa: E712
    assert Order.select().where(Order.id.in_(ids), Order.status == "failed").count() == 33
    assert Discount.get_by_id(code.id).used_count == 7
    assert sum(u.used_count for u in DiscountUse.select()) == 7


def test_direct_claims_from_many_threads_never_overshoot_a_customers_limit(make_user: Any) -> None:
    users = [make_user()[0] for _ in range(4)]
    product = Product.create(sku="T-2", name="T", slug="t-2", price=1000, stock_quantity=1000, tags=[], images=[])
    code = Discount.create(code="TWICE", kind="percent", value=10, per_customer_limit=2)
    ids = _orders(users, product, code, 10)
    _reserve_all(ids)
    for user in users:
        held = Order.select().where(Order.user == user.id, Order.discount_held == True).count()  # noqa: E712
        assert held == 2, user.email
        assert DiscountUse.get(DiscountUse.discount == code.id, DiscountUse.user == user.id).used_count == 2
    assert Discount.get_by_id(code.id).used_count == 8
