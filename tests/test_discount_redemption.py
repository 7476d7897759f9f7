"""Discount codes price orders from the discount table, and their uses are held like stock: claimed
when the order reserves stock, given back when it fails, expires or is cancelled before shipping.
Each refusal is a 422 with its own code and a message a shopper can read. An order placed while a
use was left, whose code runs out before its reservation, fails with discount_exhausted (holding
nothing, charging nothing) instead of going on at a higher price than the shopper saw."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from models import events
from models.cart.store import cart_key
from models.errors import DomainError
from models.infra.redis_client import get_redis
from models.orders import payment_steps, pipeline
from models.orders.checkout import place_order
from models.tables import Discount, DiscountUse, Order, Product, User, utcnow
from tests.support import assert_error, checkout_body

API = "/api/v1"


@pytest.fixture
def item() -> Product:
    return Product.create(
        sku="D-1", name="Linen shirt", slug="linen-shirt", price=20000, stock_quantity=20, tags=[], images=[]
    )


def discount(code: str = "SAVE10", kind: str = "percent", value: int = 10, **extra: Any) -> Discount:
    return Discount.create(code=code, kind=kind, value=value, **extra)


def place(user: User, product: Product, quantity: int = 1, code: str | None = "SAVE10", **body: Any) -> Order:
    """Place an order through the domain (the door's work is done by collecting its follow-ups)."""
    session = "s-" + uuid.uuid4().hex[:12]
    get_redis().hset(cart_key(session), mapping={str(product.id): quantity})
    with events.collecting():
        return place_order(user, session, checkout_body(discount_code=code, **body), None).order


def step(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with events.collecting():
        return fn(*args, **kwargs)


def used(d: Discount) -> int:
    return int(Discount.get_by_id(d.id).used_count)


def customer_uses(d: Discount, user: User) -> int:
    row = DiscountUse.get_or_none(DiscountUse.discount == d.id, DiscountUse.user == user.id)
    return row.used_count if row else 0


def test_percent_and_fixed_codes_price_the_order(make_user: Any, item: Product) -> None:
    user, _ = make_user()
    discount("SAVE10", "percent", 10)
    discount("FLAT5000", "fixed", 5000)
    discount("HUGE", "fixed", 10**9)
    order = place(user, item, 3, "save10")  # codes match in any case
    assert (order.subtotal, order.discount_amount, order.shipping_fee, order.total) == (60000, 6000, 0, 54000)
    assert order.discount_code == "SAVE10"
    order = place(user, item, 1, " flat5000 ")
    assert (order.subtotal, order.discount_amount, order.shipping_fee, order.total) == (20000, 5000, 3000, 18000)
    order = place(user, item, 1, "HUGE")  # never more than the subtotal; shipping is still paid
    assert (order.discount_amount, order.total) == (20000, 3000)


@pytest.mark.parametrize(
    ("setup", "code", "words"),
    [
        ({}, "discount_invalid", "is not valid"),
        ({"active": False}, "discount_invalid", "is not valid"),
        ({"starts_at": "future"}, "discount_invalid", "can be used from"),
        ({"ends_at": "past"}, "discount_expired", "expired on"),
        ({"usage_limit": 2, "used_count": 2}, "discount_exhausted", "has been used up"),
        ({"min_subtotal": 50000}, "discount_min_subtotal", "add 30,000 KRW more"),
    ],
)
def test_each_refusal_is_a_422_a_shopper_can_read(
    client: Any, make_user: Any, item: Product, setup: dict[str, Any], code: str, words: str
) -> None:
    _, headers = make_user()
    if setup:
        when = {"future": utcnow() + timedelta(days=1), "past": utcnow() - timedelta(seconds=1)}
        discount("SPRING", **{k: when.get(v, v) if isinstance(v, str) else v for k, v in setup.items()})
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "s-refused"})
    response = client.post(
        f"{API}/orders", json=checkout_body(discount_code="spring"), headers={**headers, "X-Session-ID": "s-refused"}
    )
    error = assert_error(response, 422, code)
    assert words in error["message"] and "SPRING" in error["message"]
    assert error["details"]["field"] == "discount_code"
    assert Order.select().count() == 0


def test_per_customer_limit_counts_the_customers_held_uses(make_user: Any, item: Product) -> None:
    ana, _ = make_user()
    bo, _ = make_user()
    d = discount(per_customer_limit=1)
    first = place(ana, item)
    step(pipeline.reserve_stock, first.id)
    assert customer_uses(d, ana) == 1
    with pytest.raises(DomainError) as refused:
        place(ana, item)
    assert refused.value.code == "discount_exhausted" and "once per customer" in refused.value.message
    assert place(bo, item).discount_amount == 2000  # another customer still may
    step(pipeline.cancel, first.id, ana)  # cancelling gives the customer's use back
    assert customer_uses(d, ana) == 0 and used(d) == 0
    assert place(ana, item).discount_amount == 2000


def test_the_use_is_claimed_at_reservation_and_given_back_when_the_order_closes(make_user: Any, item: Product) -> None:
    user, _ = make_user()
    d = discount(usage_limit=5)
    order = place(user, item)
    assert used(d) == 0 and Order.get_by_id(order.id).discount_id == d.id  # placing claims nothing yet
    step(pipeline.reserve_stock, order.id)
    assert Order.get_by_id(order.id).discount_held and used(d) == 1 and customer_uses(d, user) == 1
    step(pipeline.reserve_stock, order.id)  # a second run of the task claims nothing more
    assert used(d) == 1

    # expired
    Order.update(reserved_until=utcnow() - timedelta(seconds=1)).where(Order.id == order.id).execute()
    assert step(pipeline.expire_reservations) == 1
    assert not Order.get_by_id(order.id).discount_held and used(d) == 0 and customer_uses(d, user) == 0

    # payment declined
    order = place(user, item)
    step(pipeline.reserve_stock, order.id)
    step(payment_steps.submit, order.id, user, {"token": "tok_decline"})
    step(payment_steps.capture, order.id)
    assert Order.get_by_id(order.id).status == "failed" and used(d) == 0

    # cancelled after payment, before shipping
    order = place(user, item)
    step(pipeline.reserve_stock, order.id)
    step(payment_steps.submit, order.id, user, {"token": "tok_ok"})
    step(payment_steps.capture, order.id)
    assert Order.get_by_id(order.id).status == "confirmed" and used(d) == 1
    step(pipeline.cancel, order.id, user)
    assert used(d) == 0 and not Order.get_by_id(order.id).discount_held

    # shipped and delivered: the use stays taken
    order = place(user, item)
    step(pipeline.reserve_stock, order.id)
    step(payment_steps.submit, order.id, user, {"token": "tok_ok"})
    step(payment_steps.capture, order.id)
    step(pipeline.admin_update, order.id, "shipped", "TRACK-1", "04")
    step(pipeline.admin_update, order.id, "delivered", None, None)
    assert used(d) == 1 and Order.get_by_id(order.id).discount_held


def test_an_order_whose_code_ran_out_before_reservation_fails_and_holds_nothing(make_user: Any, item: Product) -> None:
    """The decision: the shopper saw the discounted total when placing the order; charging more would
    surprise them, so the order fails (nothing held, nothing charged) and says why."""
    ana, _ = make_user()
    bo, _ = make_user()
    d = discount(usage_limit=1)
    first, second = place(ana, item, 2), place(bo, item, 3)  # both placed while one use was left
    assert first.discount_amount == 4000 and second.discount_amount == 6000
    step(pipeline.reserve_stock, first.id)
    step(pipeline.reserve_stock, second.id)
    assert Order.get_by_id(first.id).status == "reserved" and used(d) == 1
    lost = Order.get_by_id(second.id)
    assert lost.status == "failed" and lost.failure_reason == "discount_exhausted"
    assert lost.failure_detail["code"] == "discount_exhausted" and "SAVE10" in lost.failure_detail["message"]
    assert not lost.stock_held and not lost.discount_held
    assert Product.get_by_id(item.id).stock_quantity == 20 - 2  # the second order's units went back
    assert customer_uses(d, bo) == 0
    # Once the first order gives its use back, the code works again.
    step(pipeline.cancel, first.id, ana)
    assert used(d) == 0 and place(bo, item).discount_amount == 2000


def test_a_deleted_discount_leaves_placed_orders_at_their_price(make_user: Any, item: Product) -> None:
    user, _ = make_user()
    d = discount(usage_limit=1)
    order = place(user, item)
    Discount.delete().where(Discount.id == d.id).execute()
    step(pipeline.reserve_stock, order.id)
    kept = Order.get_by_id(order.id)
    assert kept.status == "reserved" and kept.discount_amount == 2000 and kept.discount_code == "SAVE10"
    assert kept.discount_id is None and not kept.discount_held


def test_an_order_failing_for_stock_claims_no_use(make_user: Any) -> None:
    user, _ = make_user()
    scarce = Product.create(
        sku="D-2", name="Last one", slug="last-one", price=10000, stock_quantity=1, tags=[], images=[]
    )
    d = discount(usage_limit=3)
    order = place(user, scarce, 1)
    Product.update(stock_quantity=0).where(Product.id == scarce.id).execute()
    step(pipeline.reserve_stock, order.id)
    assert Order.get_by_id(order.id).failure_reason == "out_of_stock" and used(d) == 0


def test_guests_use_codes_but_not_the_ones_limited_per_customer(client: Any, item: Product) -> None:
    """A guest is only an email they type, so a code limited per customer needs an account; any
    other code works for a guest, and the guest's order holds a use like anyone's."""
    d = discount(usage_limit=5)
    discount("ONCE", "fixed", 3000, per_customer_limit=1)
    guest = {"email": "guest@example.com", "phone": "010-1234-5678", "full_name": "Guest"}
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "session-guest"}
    )
    refused = client.post(
        f"{API}/orders",
        json=checkout_body(guest=guest, discount_code="once"),
        headers={"X-Session-ID": "session-guest"},
    )
    assert "sign in" in assert_error(refused, 422, "discount_invalid")["message"]
    quoted = client.post(
        f"{API}/cart/quote",
        json={"shipping_method": "standard", "discount_code": "once"},
        headers={"X-Session-ID": "session-guest"},
    )
    assert quoted.json() == refused.json()
    placed = client.post(
        f"{API}/orders",
        json=checkout_body(guest=guest, discount_code="save10"),
        headers={"X-Session-ID": "session-guest"},
    )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    assert placed.json()["discount_amount"] == 2000
    step(pipeline.reserve_stock, order_id)
    assert Order.get_by_id(order_id).discount_held and used(d) == 1 and DiscountUse.select().count() == 0


@pytest.mark.parametrize(
    ("currency", "needs", "more"),
    [
        ("USD", "at least 50.00 USD", "add 30.00 USD more"),  # $50.00 and $30.00, not 5,000 USD
        ("EUR", "at least 50.00 EUR", "add 30.00 EUR more"),
        ("JPY", "at least 5,000 JPY", "add 3,000 JPY more"),  # no minor unit, as KRW
        ("KRW", "at least 5,000 KRW", "add 3,000 KRW more"),
    ],
)
def test_the_minimum_subtotal_is_written_in_the_currencys_units(
    monkeypatch: pytest.MonkeyPatch, currency: str, needs: str, more: str
) -> None:
    """min_subtotal is in minor units, like every amount: a USD shop's 5000 is $50.00."""
    from models.discounts import rules
    from models.infra.settings import get_settings

    monkeypatch.setenv("CURRENCY", currency)
    get_settings.cache_clear()
    try:
        discount("SPRING", min_subtotal=5000)
        with pytest.raises(DomainError) as refused:
            rules.offer("spring", 2000, None)
        assert refused.value.code == "discount_min_subtotal"
        assert needs in refused.value.message and more in refused.value.message, refused.value.message
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
