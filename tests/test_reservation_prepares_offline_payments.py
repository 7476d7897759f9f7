"""A gateway whose payment preparation calls no one (dummy, Toss: the client opens the widget)
is prepared in the reservation's own transaction: the order turns reserved with its
`payment.next_action` in one write, one commit and one version, and no PreparePayment follows.
Stripe's preparation is a call to Stripe (a PaymentIntent), never made inside a transaction:
it still runs after the reservation commits."""

from __future__ import annotations

from typing import Any

from models import events
from models.events import PreparePayment
from models.orders import payment_steps, pipeline
from models.orders.checkout import place_order
from models.payments.dummy import DummyGateway
from models.tables import Order, OrderEvent, Product, User
from tests.support import checkout_body, register_shopper

API = "/api/v1"


def placed(client: Any, email: str, payment_method: str) -> tuple[Order, Any]:
    """An order placed through the domain (nothing published), and its customer."""
    headers = register_shopper(client, email)
    item = Product.create(
        sku=f"SKU-{email[:6]}",
        name="Linen Tee",
        slug=f"tee-{email[:6]}",
        price=9000,
        stock_quantity=5,
        tags=[],
        images=[],
    )
    session = "session-" + email.split("@")[0]
    added = client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": session}
    )
    assert added.status_code == 200, added.text
    user = User.get_by_id(client.get(f"{API}/auth/me", headers=headers).json()["id"])
    with events.collecting():
        order = place_order(user, session, checkout_body(payment_method=payment_method), None).order
    return order, user


def timeline(order_id: int) -> list[str]:
    return [e.type for e in OrderEvent.select().where(OrderEvent.order == order_id).order_by(OrderEvent.id)]


def test_a_dummy_payment_is_prepared_in_the_reservations_transaction(client: Any) -> None:
    order, _ = placed(client, "offline@example.com", "dummy")
    before = DummyGateway().ledger().calls.get("authorize", 0)
    with events.collecting() as emitted:
        pipeline.reserve_stock(order.id, "task-reserve")
    after = Order.get_by_id(order.id)
    assert after.status == "reserved" and after.payment_next_action == {"type": "token"}
    assert after.version == order.version + 1  # one write: reserved and prepared together
    assert timeline(order.id)[-2:] == ["stock_reserved", "payment_prepared"]
    assert not any(isinstance(m, PreparePayment) for m in emitted)
    assert DummyGateway().ledger().calls.get("authorize", 0) == before + 1

    # Run again (a redelivered task, a re-drive): nothing more is prepared.
    with events.collecting():
        pipeline.reserve_stock(order.id, "task-reserve")
        payment_steps.authorize(order.id)
    assert Order.get_by_id(order.id).version == after.version
    assert DummyGateway().ledger().calls.get("authorize", 0) == before + 1


def test_a_toss_payment_is_prepared_with_the_customer_read_with_the_lock(client: Any, fake_toss: Any) -> None:
    order, user = placed(client, "toss-offline@example.com", "toss")
    with events.collecting() as emitted:
        pipeline.reserve_stock(order.id)
    action = Order.get_by_id(order.id).payment_next_action
    assert action["type"] == "toss_widget" and action["amount"] == order.total
    assert (action["customer_email"], action["customer_name"]) == (user.email, user.full_name)
    assert action["order_name"] == "Linen Tee"
    assert not any(isinstance(m, PreparePayment) for m in emitted)


def test_a_stripe_payment_is_still_prepared_after_the_commit(client: Any, fake_stripe: Any) -> None:
    order, _ = placed(client, "online@example.com", "stripe")
    intents = set(fake_stripe.intents)  # the session's fake keeps what earlier tests made
    with events.collecting() as emitted:
        pipeline.reserve_stock(order.id)
    reserved = Order.get_by_id(order.id)
    assert reserved.status == "reserved" and reserved.payment_next_action is None
    assert [m for m in emitted if isinstance(m, PreparePayment)] == [PreparePayment(order.id)]
    assert set(fake_stripe.intents) == intents  # no call to Stripe inside the reservation
    with events.collecting():
        payment_steps.authorize(order.id)
    assert Order.get_by_id(order.id).payment_next_action["type"] == "stripe_confirm"
