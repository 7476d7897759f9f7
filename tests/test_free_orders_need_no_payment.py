"""An order whose total is 0 (a code that covers the goods, with free shipping) needs no payment, and
no gateway could take one: Stripe and Toss refuse an amount of 0. It is confirmed as soon as its
stock is reserved, with no gateway asked, whichever payment method the storefront chose; a
cancellation gives the stock and the code's use back and asks no gateway for a refund."""

from __future__ import annotations

from typing import Any

import pytest

from models.infra.settings import get_settings
from models.payments.dummy import DummyGateway
from models.tables import Discount, EmailLog, Order, OrderEvent, Product
from tests.support import assert_error, checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
API = "/api/v1"


@pytest.mark.parametrize("method", ["dummy", "stripe", "toss"])
def test_a_free_order_is_confirmed_without_a_gateway(
    client: Any, worker: Any, fake_stripe: Any, fake_toss: Any, method: str
) -> None:
    price = get_settings().shipping_free_over["standard"] or 50000  # free standard shipping from here
    item = Product.create(sku="SKU-F", name="Gift", slug="gift", price=price, stock_quantity=3, tags=[], images=[])
    Discount.create(code="ONTHEHOUSE", kind="percent", value=100)
    headers = register_shopper(client, "ana@example.com")
    session = {"X-Session-ID": "session-free"}
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session)
    quote = client.post(
        f"{API}/cart/quote", json={"shipping_method": "standard", "discount_code": "onthehouse"}, headers=session
    )
    assert quote.json()["total"] == 0, quote.text
    intents, toss_payments = len(fake_stripe.intents), len(fake_toss.payments)

    body = checkout_body(payment_method=method, shipping_method="standard", discount_code="ONTHEHOUSE")
    placed = client.post(f"{API}/orders", json=body, headers={**headers, **session})
    assert placed.status_code == 202 and placed.json()["total"] == 0, placed.text
    order_id = placed.json()["id"]
    order = wait_for(
        lambda: (o := client.get(f"{API}/orders/{order_id}", headers=headers).json())["status"] == "confirmed" and o,
        timeout=20,
        what="the free order to be confirmed",
    )
    assert order["payment_status"] == "paid" and order["payment"]["next_action"] is None
    timeline = list(OrderEvent.select().where(OrderEvent.order == order_id).order_by(OrderEvent.id))
    assert [e.type for e in timeline][-2:] == ["stock_reserved", "payment_captured"]
    assert timeline[-1].detail == {"amount": 0, "nothing_to_charge": True}
    assert Product.get_by_id(item.id).stock_quantity == 2
    # No gateway was asked for anything.
    assert DummyGateway.ledger().calls == {}
    assert (len(fake_stripe.intents), len(fake_toss.payments)) == (intents, toss_payments)
    wait_for(
        lambda: EmailLog.get_or_none(EmailLog.order == order_id, EmailLog.kind == "confirmation"),
        what="the confirmation email",
    )
    assert_error(
        client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers), 409, "invalid_state"
    )

    # Cancelled: stock and the code's use back; "refunded" with nothing to give back, no gateway asked.
    assert client.delete(f"{API}/orders/{order_id}", headers=headers).status_code == 200
    wait_for(lambda: Order.get_by_id(order_id).payment_status == "refunded", what="the free order's refund")
    assert Product.get_by_id(item.id).stock_quantity == 3
    assert Discount.get(Discount.code == "ONTHEHOUSE").used_count == 0
    assert DummyGateway.ledger().calls == {}
    assert (len(fake_stripe.intents), len(fake_toss.payments)) == (intents, toss_payments)
    assert Order.get_by_id(order_id).payment_flag is None
