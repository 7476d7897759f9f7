"""Paying takes out of the cart only what the order bought: a line added to the same session after
checkout, and units of an ordered product added since, are still in the cart once the payment is
captured (over HTTP, with the real worker running the capture and its follow-ups)."""

from __future__ import annotations

from typing import Any

import pytest

from models.cart import store as cart_store
from models.infra.redis_client import get_redis
from models.tables import Order, Product
from tasks.pipeline import remove_ordered_from_cart
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
    number = Order.get_by_id(order_id).order_number
    assert cart_store.remove_ordered(number, SESSION["X-Session-ID"], {tee.id: 2, cap.id: 1}) is False
    assert cart() == {socks.id: 3, tee.id: 1}


def test_an_order_id_given_out_again_still_has_its_lines_removed(client: Any, worker: Any) -> None:
    """A database restored from a backup hands out order ids again, while Redis kept the markers
    of the orders that had them: the marker is named by the order's number, which is new."""
    headers = register_shopper(client, "restored@example.com")
    tee, cap = product("TEE2"), product("CAP2")
    add(client, tee.id, 2)
    add(client, cap.id, 1)
    order_id = client.post(f"{API}/orders", json=checkout_body(), headers={**headers, **SESSION}).json()["id"]
    # What the lost order that had this id left: its lines were removed from its own cart.
    get_redis().set(f"cart-ordered:{order_id}", "1", ex=3600)
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="the payment to be prepared")
    assert client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers).status_code == 202
    wait_for(lambda: Order.get_by_id(order_id).status == "confirmed", what="the capture")
    wait_for(lambda: client.get(f"{API}/cart", headers=SESSION).json()["items"] == [], what="the ordered lines to go")


def test_a_removal_queued_before_the_order_number_was_sent_still_runs_once() -> None:
    """A message of the older form (order_id, session_id, lines) names its marker by the id."""
    session = SESSION["X-Session-ID"]
    get_redis().hset(cart_store.cart_key(session), mapping={"7": 3, "8": 1})
    assert remove_ordered_from_cart.run(order_id=77, session_id=session, lines=[[7, 2]]) is True
    assert remove_ordered_from_cart.run(order_id=77, session_id=session, lines=[[7, 2]]) is False
    assert cart_store.get_quantities(session) == {7: 1, 8: 1}
    assert get_redis().exists("cart-ordered:77") == 1


def test_a_guest_who_signs_in_before_paying_has_the_paid_lines_taken_from_their_cart(client: Any, worker: Any) -> None:
    """The guest's order names the guest's session as its cart; signing in on that session before
    the capture (a virtual account waits days for its deposit) moves the lines to the customer's
    cart and leaves the session pointing there. The trim follows the pointer, once."""
    tee, mug = product("TEE3"), product("MUG3")
    add(client, tee.id, 2)
    guest = {"email": "guest-then-member@example.com", "phone": "010-1234-5678", "full_name": "Guest"}
    placed = client.post(f"{API}/orders", json=checkout_body(guest=guest), headers=SESSION)
    assert placed.status_code == 202, placed.text
    order_id, order_token = placed.json()["id"], placed.json()["order_token"]
    assert Order.get_by_id(order_id).session_id == SESSION["X-Session-ID"]
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="the payment to be prepared")

    member = register_shopper(client, "guest-then-member@example.com")
    client.post(f"{API}/cart/items", json={"product_id": mug.id, "quantity": 1}, headers=member)  # the customer's own
    attached = client.get(f"{API}/cart", headers={**member, **SESSION})  # the same device, now signed in
    assert {line["product_id"]: line["quantity"] for line in attached.json()["items"]} == {tee.id: 2, mug.id: 1}

    paid = client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=bearer(order_token))
    assert paid.status_code == 202, paid.text
    wait_for(lambda: Order.get_by_id(order_id).status == "confirmed", what="the capture")

    def cart() -> dict[int, int]:
        return {
            line["product_id"]: line["quantity"] for line in client.get(f"{API}/cart", headers=member).json()["items"]
        }

    number = Order.get_by_id(order_id).order_number
    wait_for(lambda: get_redis().exists(f"cart-ordered:{number}"), what="the trim to run")
    # The tees were paid for and left; the mug the customer had was not ordered and stays.
    assert cart() == {mug.id: 1}
    assert cart_store.remove_ordered(number, SESSION["X-Session-ID"], {tee.id: 2}) is False  # once
    assert cart() == {mug.id: 1}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
