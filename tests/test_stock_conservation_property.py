"""Conservation: after any mix of checkouts, payments, declines, cancels, expiries and shipping,
stock on hand + units held by live orders (reserved, confirmed, shipped, delivered) equals the
starting stock. Hypothesis picks the steps and their interleaving; the steps are the same domain
functions the Celery tasks call, run here one at a time in the order hypothesis chooses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import events
from models.errors import DomainError
from models.orders import payment_steps, pipeline
from models.orders.checkout import place_order
from models.payments import GatewayUnavailable
from models.tables import Order, OrderItem, Product, User, utcnow
from tests.support import truncate_all

START = [6, 4]
HELD = ("reserved", "confirmed", "shipped", "delivered")

steps = st.one_of(
    st.tuples(st.just("place"), st.integers(0, 2), st.integers(0, 1), st.integers(1, 4), st.integers(0, 3)),
    st.tuples(st.just("reserve"), st.integers(0, 9)),
    st.tuples(st.just("pay"), st.integers(0, 9), st.sampled_from(["tok_ok", "tok_decline", "tok_error"])),
    st.tuples(st.just("capture"), st.integers(0, 9)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("expire"), st.integers(0, 9)),
    st.tuples(st.just("refund"), st.integers(0, 9)),
    st.tuples(st.just("void"), st.integers(0, 9)),
    st.tuples(st.just("ship"), st.integers(0, 9)),
    st.tuples(st.just("deliver"), st.integers(0, 9)),
)


def check_conservation(products: list[Product]) -> None:
    for product, start in zip(products, START, strict=False):
        on_hand = Product.get_by_id(product.id).stock_quantity
        held = sum(i.quantity for i in OrderItem.select().join(Order).where(
            OrderItem.product == product.id, Order.stock_held == True))  # noqa: E712
        assert on_hand >= 0
        assert on_hand + held == start, (product.sku, on_hand, held)
    for order in Order.select():
        assert order.stock_held == (order.status in HELD), (order.order_number, order.status, order.stock_held)
        if order.status in ("confirmed", "shipped", "delivered"):
            assert order.payment_status == "paid"


def apply(step: tuple[Any, ...], users: list[User], products: list[Product], orders: list[int], client: Any) -> None:
    # The steps run here directly; what they emit (tasks to publish) is dropped on purpose: this test
    # drives every step itself.
    with events.collecting():
        _apply(step, users, products, orders, client)


def _apply(step: tuple[Any, ...], users: list[User], products: list[Product], orders: list[int], client: Any) -> None:
    kind = step[0]
    if kind == "place":
        _, user_idx, product_idx, qty, extra = step
        session = f"session-{len(orders):04d}"
        client.delete("/api/v1/cart", headers={"X-Session-ID": session})
        lines = {products[product_idx].id: qty}
        if extra:
            lines[products[1 - product_idx].id] = extra
        for product_id, quantity in lines.items():
            client.post("/api/v1/cart/items", json={"product_id": product_id, "quantity": min(quantity, 4)},
                        headers={"X-Session-ID": session})
        body = {"shipping_address": {"recipient_name": "A", "phone": "0101234567", "postal_code": "04524",
                                     "address_line1": "1", "city": "Seoul"},
                "shipping_method": "standard", "payment_method": "dummy"}
        try:
            orders.append(place_order(users[user_idx], session, body, None).order.id)
        except DomainError:
            pass
        return
    if not orders:
        return
    order_id = orders[step[1] % len(orders)]
    order = Order.get_by_id(order_id)
    try:
        if kind == "reserve":
            pipeline.reserve_stock(order_id)
        elif kind == "pay":
            payment_steps.authorize(order_id)
            payment_steps.submit(order_id, User.get_by_id(order.user_id), {"token": step[2]})
        elif kind == "capture":
            payment_steps.capture(order_id)
        elif kind == "cancel":
            pipeline.cancel(order_id, None)
        elif kind == "expire":
            pipeline.expire_reservations(now=utcnow() + timedelta(days=1))
        elif kind == "refund":
            payment_steps.refund(order_id)
        elif kind == "void":
            payment_steps.void(order_id)
        elif kind == "ship":
            pipeline.admin_update(order_id, "shipped", "TRACK-1", "04")
        elif kind == "deliver":
            pipeline.admin_update(order_id, "delivered", None, None)
    except (DomainError, GatewayUnavailable):
        pass  # refused transitions and transient gateway errors change nothing


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(steps, min_size=1, max_size=25))
def test_stock_is_conserved(client: Any, make_user: Any, sequence: list[tuple[Any, ...]]) -> None:
    truncate_all()
    from models.infra.redis_client import get_redis

    get_redis().flushdb()
    users = [make_user(email=f"p{n}-{id(sequence)}@example.com")[0] for n in range(3)]
    products = [Product.create(sku=f"C-{n}", name=f"C{n}", slug=f"c-{n}", price=10000, stock_quantity=start,
                               tags=[], images=[]) for n, start in enumerate(START)]
    orders: list[int] = []
    for step in sequence:
        apply(step, users, products, orders, client)
        check_conservation(products)
