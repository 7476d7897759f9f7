"""Every task is idempotent: running it twice, or a redelivered message after a worker is killed
with SIGKILL mid-task, changes nothing the second time and charges once (counted at the gateway)."""

from __future__ import annotations

from typing import Any

import pytest

from models.infra import failpoints
from models.payments.dummy import DummyGateway
from models.tables import Order, OrderEvent, Product
from tasks import pipeline as tasks
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
API = "/api/v1"


def reserved(client: Any, headers: dict[str, str], stock: int = 5, quantity: int = 2) -> tuple[int, Product]:
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=stock, tags=[], images=[])
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": quantity}, headers={"X-Session-ID": "session-one"}
    )
    order_id = client.post(
        f"{API}/orders", json=checkout_body(), headers={**headers, "X-Session-ID": "session-one"}
    ).json()["id"]
    wait_for(lambda: Order.get_by_id(order_id).status == "reserved", what="reservation")
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="payment preparation")
    return order_id, item


def snapshot(order_id: int, product_id: int) -> tuple[Any, ...]:
    order = Order.get_by_id(order_id)
    events = [e.type for e in OrderEvent.select().where(OrderEvent.order == order_id).order_by(OrderEvent.id)]
    return (
        order.status,
        order.payment_status,
        order.version,
        order.stock_held,
        Product.get_by_id(product_id).stock_quantity,
        events,
    )


def run_task(task: Any, *args: Any) -> None:
    task.apply_async(args=args, ignore_result=False).get(timeout=30)


def test_every_task_run_twice_changes_nothing_the_second_time(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, item = reserved(client, headers)
    before = snapshot(order_id, item.id)
    run_task(tasks.reserve_stock, order_id)
    run_task(tasks.authorize_payment, order_id)
    assert snapshot(order_id, item.id) == before

    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_for(lambda: Order.get_by_id(order_id).status == "confirmed", what="confirmation")
    confirmed = snapshot(order_id, item.id)
    for task in (
        tasks.capture_payment,
        tasks.reserve_stock,
        tasks.authorize_payment,
        tasks.void_payment,
        tasks.refund_payment,
    ):
        run_task(task, order_id)
        run_task(task, order_id)
    assert snapshot(order_id, item.id) == confirmed
    ledger = DummyGateway().ledger()
    assert len(ledger.charges) == 1 and not ledger.refunds

    client.delete(f"{API}/orders/{order_id}", headers=headers)
    wait_for(lambda: Order.get_by_id(order_id).payment_status == "refunded", what="the refund")
    refunded = snapshot(order_id, item.id)
    run_task(tasks.refund_payment, order_id)
    run_task(tasks.refund_payment, order_id)
    run_task(tasks.expire_reservations)
    assert snapshot(order_id, item.id) == refunded
    assert len(DummyGateway().ledger().refunds) == 1
    assert refunded[4] == 5  # all stock back on the shelf


@pytest.mark.parametrize("action", ["kill", "kill_worker"])
def test_sigkill_after_the_gateway_captured_charges_once(client: Any, worker: Any, action: str) -> None:
    """The worker dies between the gateway's capture and the database commit; the redelivered
    message captures again with the same idempotency key and the order is confirmed, charged once."""
    headers = register_shopper(client, "ana@example.com")
    order_id, item = reserved(client, headers)
    failpoints.arm("capture.after_gateway", action)
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    if action == "kill_worker":
        wait_for(lambda: not worker.running(), timeout=15, what="the worker to die")
        worker.start()  # a replacement worker picks the unacknowledged message up
    wait_for(
        lambda: Order.get_by_id(order_id).status == "confirmed",
        timeout=45,
        interval=0.2,
        what="the redelivered capture to confirm the order",
    )
    ledger = DummyGateway().ledger()
    assert ledger.calls["capture"] == 2, ledger
    assert len(ledger.charges) == 1
    assert [e.type for e in OrderEvent.select().where(OrderEvent.order == order_id)].count("payment_captured") == 1
    assert Product.get_by_id(item.id).stock_quantity == 3


def test_capture_task_failing_after_the_charge_is_redriven_without_a_second_charge(client: Any, worker: Any) -> None:
    """A capture task that dies (an exception, not a retry) after the gateway charged leaves the
    order reserved with its payment submitted; the re-drive asks again and the charge is reused."""
    headers = register_shopper(client, "ana@example.com")
    order_id, item = reserved(client, headers)
    failpoints.arm("capture.after_gateway", "raise")
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    # The capture task failed after charging; the re-drive (beat) asks again.
    wait_for(lambda: DummyGateway().ledger().calls.get("capture", 0) == 1, what="the first capture")
    assert Order.get_by_id(order_id).status == "reserved"

    def redriven() -> bool:  # what beat does every 15 s; STUCK_AFTER is 2 s in tests
        run_task(tasks.redrive_stuck_orders)
        return Order.get_by_id(order_id).status == "confirmed"

    wait_for(redriven, timeout=20, interval=0.5, what="the re-driven capture")
    assert len(DummyGateway().ledger().charges) == 1
    assert Product.get_by_id(item.id).stock_quantity == 3
