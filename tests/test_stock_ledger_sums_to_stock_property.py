"""The stock ledger sums to the stock on hand for every product after any interleaving of checkouts,
payments, declines, cancels, expiries, shipping and staff's stock changes (hypothesis picks the steps
and their order), and when reservations, releases and staff's changes race from many threads; each
row's stock_after follows from the one before it, so the rows are in the order the changes happened."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import events
from models.cart.store import cart_key
from models.catalog import queries as catalog
from models.errors import DomainError
from models.infra.db import db
from models.infra.redis_client import get_redis
from models.orders import payment_steps, pipeline
from models.orders.checkout import place_order
from models.payments import GatewayUnavailable
from models.stock import admin as stock
from models.stock import ledger
from models.tables import Order, Product, StockEntry, User, utcnow
from tests.support import checkout_body, truncate_all

START = [6, 4]

steps = st.one_of(
    st.tuples(st.just("place"), st.integers(0, 1), st.integers(0, 1), st.integers(1, 4), st.integers(0, 3)),
    st.tuples(st.just("reserve"), st.integers(0, 9)),
    st.tuples(st.just("pay"), st.integers(0, 9), st.sampled_from(["tok_ok", "tok_decline"])),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("expire"), st.integers(0, 9)),
    st.tuples(st.just("ship"), st.integers(0, 9)),
    st.tuples(st.just("deliver"), st.integers(0, 9)),
    st.tuples(st.just("delta"), st.integers(0, 1), st.integers(-5, 5), st.sampled_from(["restock", "adjustment"])),
    st.tuples(st.just("set"), st.integers(0, 1), st.integers(0, 8)),
    st.tuples(st.just("patch"), st.integers(0, 1), st.integers(0, 8)),
)


def check(products: list[int]) -> None:
    assert ledger.discrepancies() == []
    for product_id in products:
        running = 0
        for delta, after in (
            StockEntry.select(StockEntry.delta, StockEntry.stock_after)
            .where(StockEntry.product == product_id)
            .order_by(StockEntry.id)
            .tuples()
        ):
            running += delta
            assert after == running
        assert running == Product.get_by_id(product_id).stock_quantity >= 0


def _apply(step: tuple[Any, ...], users: list[User], products: list[int], orders: list[int]) -> None:
    kind = step[0]
    if kind == "place":
        _, user_idx, product_idx, qty, extra = step
        session = "s-" + uuid.uuid4().hex[:12]
        lines = {str(products[product_idx]): qty, **({str(products[1 - product_idx]): extra} if extra else {})}
        get_redis().hset(cart_key(session), mapping=lines)
        orders.append(place_order(users[user_idx], session, checkout_body(), None).order.id)
        return
    if kind in ("delta", "set", "patch"):
        product_id = products[step[1]]
        if kind == "delta" and step[2]:
            delta = step[2] if step[3] == "adjustment" else abs(step[2])
            stock.adjust(product_id, "user:1", step[3], delta=delta)
        elif kind == "set":
            stock.adjust(product_id, "user:1", "adjustment", set_to=step[2])
        elif kind == "patch":
            catalog.update_product(product_id, {"stock_quantity": step[2]}, "user:1")
        return
    if not orders:
        return
    order_id = orders[step[1] % len(orders)]
    order = Order.get_by_id(order_id)
    if kind == "reserve":
        pipeline.reserve_stock(order_id)
    elif kind == "pay":
        payment_steps.authorize(order_id)
        payment_steps.submit(order_id, User.get_by_id(order.user_id), {"token": step[2]})
        payment_steps.capture(order_id)
    elif kind == "cancel":
        pipeline.cancel(order_id, None)
    elif kind == "expire":
        pipeline.expire_reservations(now=utcnow() + timedelta(days=1))
    elif kind == "ship":
        pipeline.admin_update(order_id, "shipped", "TRACK-1", "04")
    elif kind == "deliver":
        pipeline.admin_update(order_id, "delivered", None, None)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.lists(steps, min_size=1, max_size=25))
def test_the_ledger_sums_to_the_stock_after_any_sequence(make_user: Any, sequence: list[tuple[Any, ...]]) -> None:
    truncate_all()
    get_redis().flushdb()
    users = [make_user(email=f"l{n}-{uuid.uuid4().hex[:8]}@example.com")[0] for n in range(2)]
    products = [
        catalog.create_product(
            {"sku": f"L-{n}", "name": f"L{n}", "price": 10000, "stock_quantity": start, "low_stock_threshold": 2}
        )["id"]
        for n, start in enumerate(START)
    ]
    orders: list[int] = []
    for step in sequence:
        try:
            with events.collecting():  # the steps' follow-ups are dropped: this test drives every step
                _apply(step, users, products, orders)
        except (DomainError, GatewayUnavailable):
            pass  # refused changes change nothing
        check(products)


def test_the_ledger_sums_to_the_stock_when_changes_race(make_user: Any) -> None:
    users = [make_user()[0] for _ in range(4)]
    products = [
        catalog.create_product({"sku": f"R-{n}", "name": f"R{n}", "price": 1000, "stock_quantity": 30})["id"]
        for n in range(3)
    ]
    orders = []
    for n in range(40):
        session = f"race-{n}"
        rng = random.Random(n)
        lines = {str(pid): rng.randint(1, 3) for pid in rng.sample(products, rng.randint(1, 3))}
        get_redis().hset(cart_key(session), mapping=lines)
        with events.collecting():
            orders.append(place_order(users[n % 4], session, checkout_body(), None).order.id)

    def work(n: int) -> None:
        rng = random.Random(1000 + n)
        with db.obj.connection_context(), events.collecting():
            try:
                if n < 40:
                    pipeline.reserve_stock(orders[n])
                    if rng.random() < 0.5:
                        pipeline.cancel(orders[n], None)
                else:
                    product_id = rng.choice(products)
                    if rng.random() < 0.5:
                        stock.adjust(product_id, "user:1", "adjustment", delta=rng.randint(-4, 4) or 1)
                    else:
                        stock.adjust(product_id, "user:1", "restock", delta=rng.randint(1, 5))
            except DomainError:
                pass

    jobs = list(range(60))
    random.Random(3).shuffle(jobs)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(work, jobs))
    check(products)
    assert StockEntry.select().where(StockEntry.reason == "reservation").count() > 0
