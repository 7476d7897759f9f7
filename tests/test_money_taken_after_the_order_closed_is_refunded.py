"""Money the gateway takes after its order closed is refunded (or, for a virtual account not yet
paid, the account is closed), whichever way it got there: a Toss confirm still running when the
shopper cancels, a capture that charged and died before a cancel, a charge that lands after the
void looked. The order never ends `voided` while the shopper is charged. Counted at the gateways."""

from __future__ import annotations

from typing import Any

import pytest

from models.infra import failpoints
from models.payments.dummy import DummyGateway
from models.tables import Order, Product
from tests.fakes.toss_server import FakeToss
from tests.payment_flows import API, event_types, order_row, reconcile_all, reserved, stock, wait_order
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline


def hook(live_server: Any) -> str:
    return f"{live_server.url}{API}/webhooks/toss"


def cancel_while_toss_is_confirming(
    client: Any, fake: FakeToss, method: str
) -> tuple[dict[str, str], dict[str, Any], Product, str]:
    """The shop's confirm reaches Toss, which is slow: the shop gives up (it looks the payment up:
    IN_PROGRESS, so the capture is retried), the shopper cancels, and the void looks the payment up
    while the confirm is still running. Then Toss finishes the confirm. Returns with the void held
    just after its look-up; the caller releases it."""
    headers, order, item = reserved(client, "toss")
    action = order["payment"]["next_action"]
    key = fake.open_payment(action["order_id"], action["amount"], method=method, order_name=action["order_name"])
    fake.fail_next("confirm", "stall", hold=60)
    failpoints.arm("void.after_gateway", "hold")
    paid = client.post(
        f"{API}/orders/{order['id']}/pay", headers=headers, json={"payment_key": key, "amount": order["total"]}
    )
    assert paid.status_code == 202
    wait_for(lambda: fake.stalled() == 1, timeout=20, what="the confirm to reach Toss")
    looked_up = ("GET", f"/v1/payments/{key}", "")
    wait_for(lambda: looked_up in fake.requests, timeout=20, what="the shop to give up on the confirm and look")
    assert client.delete(f"{API}/orders/{order['id']}", headers=headers).status_code == 200
    wait_for(lambda: failpoints.held("void.after_gateway"), timeout=20, what="the void to look the payment up")
    assert fake.payment(key)["status"] == "IN_PROGRESS"  # what the void saw
    fake.release()  # Toss finishes the confirm nobody waits for any more
    wait_for(lambda: fake.payment(key)["status"] != "IN_PROGRESS", what="Toss to finish the confirm")
    return headers, order, item, key


def test_a_toss_card_payment_approved_after_the_cancel_is_refunded(
    client: Any, worker: Any, fake_toss: FakeToss, live_server: Any
) -> None:
    headers, order, item, key = cancel_while_toss_is_confirming(client, fake_toss, "카드")
    assert fake_toss.payment(key)["status"] == "DONE"  # the shopper is charged
    failpoints.release("void.after_gateway")
    assert fake_toss.status_changed(key, hook(live_server)) == 200  # and Toss says so
    settled = wait_for(
        lambda: (o := order_row(order["id"])).payment_status in ("voided", "refunded") and o,
        timeout=60,
        what="the payment to settle",
    )
    assert (settled.status, settled.payment_status) == ("cancelled", "refunded")
    assert fake_toss.payment(key)["status"] == "CANCELED"
    assert fake_toss.counts(key) == {"confirm": 1, "cancel": 1, "cancelled_amount": order["total"]}
    assert "payment_captured_after_close" in event_types(order["id"]) and stock(item) == 5


def test_a_toss_virtual_account_issued_after_the_cancel_is_closed(
    client: Any, worker: Any, fake_toss: FakeToss, live_server: Any
) -> None:
    headers, order, item, key = cancel_while_toss_is_confirming(client, fake_toss, "가상계좌")
    assert fake_toss.payment(key)["status"] == "WAITING_FOR_DEPOSIT"  # an account the shopper could pay into
    failpoints.release("void.after_gateway")
    assert fake_toss.status_changed(key, hook(live_server)) == 200
    wait_for(lambda: fake_toss.payment(key)["status"] == "CANCELED", timeout=60, what="the account to be closed")
    wait_order(client, headers, order["id"], "cancelled", "voided")
    with pytest.raises(ValueError):
        fake_toss.deposit(key, "http://127.0.0.1:9/unused")  # the bank refuses a transfer now
    assert fake_toss.counts(key) == {"confirm": 1, "cancel": 1, "cancelled_amount": order["total"]}
    assert stock(item) == 5


def dummy_order(client: Any) -> tuple[dict[str, str], int, Product]:
    headers = register_shopper(client, "ana@example.com")
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    session = {"X-Session-ID": "session-one"}
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 2}, headers=session)
    order_id = client.post(f"{API}/orders", json=checkout_body(), headers={**headers, **session}).json()["id"]
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="payment preparation")
    return headers, order_id, item


def test_a_charge_whose_capture_died_before_a_cancel_is_refunded(client: Any, worker: Any) -> None:
    """The worker dies between the charge and its record; the shopper cancels while it is down; the
    redelivered capture finds the order closed and does nothing, so the void must find the charge."""
    headers, order_id, item = dummy_order(client)
    failpoints.arm("capture.after_gateway", "kill_worker")
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_for(lambda: not worker.running(), timeout=20, what="the worker to die")
    ((charge, amount),) = DummyGateway.ledger().charges.items()
    assert client.delete(f"{API}/orders/{order_id}", headers=headers).status_code == 200
    worker.start()  # the capture comes back, and the void
    settled = wait_for(
        lambda: (o := Order.get_by_id(order_id)).payment_status in ("voided", "refunded") and o,
        timeout=60,
        what="the payment to settle",
    )
    assert (settled.status, settled.payment_status) == ("cancelled", "refunded")
    assert DummyGateway.ledger().refunds == {charge: amount} and len(DummyGateway.ledger().charges) == 1
    assert "payment_captured_after_close" in event_types(order_id)
    assert Product.get_by_id(item.id).stock_quantity == 5


def test_reconciliation_refunds_a_voided_order_the_gateway_charged_afterwards(client: Any, worker: Any) -> None:
    """The void looked before the charge (nothing to release: voided); the capture, which read the
    order before the cancel, then charged and died before recording it. Reconciliation asks about
    recently voided orders that had a payment handed in, finds the charge and refunds it."""
    headers, order_id, item = dummy_order(client)
    failpoints.arm("capture.before_gateway", "hold")
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_for(lambda: failpoints.held("capture.before_gateway"), timeout=20, what="the capture to start")
    assert client.delete(f"{API}/orders/{order_id}", headers=headers).status_code == 200
    wait_for(lambda: Order.get_by_id(order_id).payment_status == "voided", timeout=20, what="the void")
    failpoints.arm("capture.after_gateway", "raise")
    failpoints.release("capture.before_gateway")
    wait_for(lambda: DummyGateway.ledger().charges, timeout=20, what="the late charge")
    ((charge, amount),) = DummyGateway.ledger().charges.items()
    assert Order.get_by_id(order_id).payment_status == "voided"  # what the shop believes: not charged

    assert reconcile_all() == 1
    wait_for(lambda: Order.get_by_id(order_id).payment_status == "refunded", timeout=30, what="the refund")
    assert DummyGateway.ledger().refunds == {charge: amount}
    assert "payment_captured_after_close" in event_types(order_id)
    assert Product.get_by_id(item.id).stock_quantity == 5
