"""A refund the gateway declines is not retried forever: the order is flagged for a person with the
gateway's reason (a `payment_flagged` event, `payment_flag` in the admin's view of the order, the
admin list of flagged payments), and neither the re-drive nor a duplicate message sends it again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models import events
from models.events import RefundPayment
from models.infra.redis_client import get_redis
from models.orders import payment_steps, pipeline
from models.payments.dummy import PREFIX, DummyGateway
from models.tables import Order, OrderEvent, Product, utcnow
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
API = "/api/v1"


def paid_order(client: Any, headers: dict[str, str]) -> int:
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "s-refund"})
    order_id = int(
        client.post(f"{API}/orders", json=checkout_body(), headers={**headers, "X-Session-ID": "s-refund"}).json()["id"]
    )
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="the payment to be prepared")
    assert client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers).status_code == 202
    wait_for(lambda: Order.get_by_id(order_id).payment_status == "paid", what="the capture")
    return order_id


def refund_calls() -> int:
    return DummyGateway.ledger().calls.get("refund", 0)


def test_a_declined_refund_flags_the_order_and_stops(client: Any, worker: Any, admin_headers: dict[str, str]) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id = paid_order(client, headers)
    # The gateway no longer knows the charge: it declines the refund for good.
    get_redis().hdel(PREFIX + "charges", Order.get_by_id(order_id).payment_transaction_id)

    assert client.delete(f"{API}/orders/{order_id}", headers=headers).status_code == 200
    order = wait_for(lambda: (o := Order.get_by_id(order_id)).payment_flag and o, what="the refund to be flagged")
    assert order.status == "cancelled" and order.payment_status == "paid"  # the money is still out
    reason = "refund declined by the gateway: No such charge to refund."
    assert order.payment_flag == reason and order.payment_flagged_at
    event = OrderEvent.get(OrderEvent.order == order_id, OrderEvent.type == "payment_flagged")
    assert event.detail == {"reason": reason, "decline_code": "unknown_charge"}
    assert event.task_id  # the worker's refund task

    seen = client.get(f"{API}/orders/{order_id}", headers=admin_headers).json()
    assert seen["payment_flag"]["reason"] == reason and seen["payment_flag"]["flagged_at"]
    assert "payment_flag" not in client.get(f"{API}/orders/{order_id}", headers=headers).json()
    listed = client.get(f"{API}/admin/payments/flagged", headers=admin_headers).json()
    assert [(o["order_id"], o["flag"]) for o in listed["items"]] == [(order_id, reason)]

    # Neither the re-drive, however long the order stays paid and closed, nor a duplicate message
    # already queued, asks the gateway again.
    calls = refund_calls()
    with events.collecting() as emitted:
        pipeline.redrive(now=utcnow() + timedelta(hours=1))
    assert RefundPayment(order_id) not in emitted
    with events.collecting():
        payment_steps.refund(order_id)
    assert refund_calls() == calls
    assert OrderEvent.select().where(OrderEvent.order == order_id, OrderEvent.type == "payment_flagged").count() == 1


def test_any_flagged_paid_order_is_left_out_of_the_refund_redrive(make_user: Any) -> None:
    # Flags a person must look at (a refund that needs a bank account, ...) are not retried every
    # 15 seconds either; reconciliation asks the gateway before it retries anything.
    user, _ = make_user()
    flagged = Order.create(
        order_number="ORD-FLAG-1",
        user=user.id,
        status="cancelled",
        payment_status="paid",
        currency="KRW",
        subtotal=1000,
        total=1000,
        shipping_address={},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        payment_transaction_id="dummy_ch_x",
        payment_flag="refund needs a person: a bank account",
        payment_flagged_at=utcnow(),
        updated_at=utcnow() - timedelta(minutes=5),
    )
    unflagged = Order.create(
        order_number="ORD-FLAG-2",
        user=user.id,
        status="cancelled",
        payment_status="paid",
        currency="KRW",
        subtotal=1000,
        total=1000,
        shipping_address={},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        payment_transaction_id="dummy_ch_y",
        updated_at=utcnow() - timedelta(minutes=5),
    )
    with events.collecting() as emitted:
        pipeline.redrive()
    assert RefundPayment(unflagged.id) in emitted and RefundPayment(flagged.id) not in emitted
