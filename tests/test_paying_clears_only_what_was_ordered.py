"""Paying takes out of the cart only what the order bought: a line added to the same session after
checkout, and units of an ordered product added since, are still in the cart once the payment is
captured (over HTTP, with the real worker running the capture and its follow-ups)."""

from __future__ import annotations

from typing import Any

import pytest

from models.cart import store as cart_store
from models.tables import Order, Product
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
API = "/api/v1"
SESSION = {"X-Session-ID": "session-after-checkout"}


def product(sku: str) -> Product:
    return Product.create(
        sku=sku, name=f"Item {sku}", slug=sku.lower(), price=10000, stock_quantity=10, tags=[], images=[]
    )


def add(client: Any, product_id: int, quantity: int) -> None:
    response = client.post(f"{API}/cart/items", json={"product_id": product_id, "quantity": quantity}, headers=SESSION)
    assert response.status_code == 200, response.text


def test_a_line_added_after_checkout_survives_payment(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    tee, cap, socks = product("TEE"), product("CAP"), product("SOCKS")
    add(client, tee.id, 2)
    add(client, cap.id, 1)
    order_id = client.post(f"{API}/orders", json=checkout_body(), headers={**headers, **SESSION}).json()["id"]
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="the payment to be prepared")

    add(client, socks.id, 3)  # shopping on in the same session while the order waits for payment
    add(client, tee.id, 1)  # one more of an ordered product
    assert client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers).status_code == 202
    wait_for(lambda: Order.get_by_id(order_id).status == "confirmed", what="the capture")

    def cart() -> dict[int, int]:
        return {
            line["product_id"]: line["quantity"] for line in client.get(f"{API}/cart", headers=SESSION).json()["items"]
        }

    # The ordered 2 tees and the cap are gone; the socks and the extra tee stay.
    assert wait_for(lambda: (c := cart()) == {socks.id: 3, tee.id: 1} and c, what="the ordered lines to go")
    # A redelivered removal (the task ran twice) takes nothing more.
    assert cart_store.remove_ordered(order_id, SESSION["X-Session-ID"], {tee.id: 2, cap.id: 1}) is False
    assert cart() == {socks.id: 3, tee.id: 1}
