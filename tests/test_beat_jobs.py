"""Beat jobs: expired reservations release their stock, abandoned carts are swept."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from models import events
from models.cart import store as cart
from models.tables import Order, Product, utcnow
from tasks import pipeline as tasks
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
API = "/api/v1"


def test_expired_reservation_releases_stock_and_voids(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 2}, headers={"X-Session-ID": "session-one"}
    )
    order_id = client.post(
        f"{API}/orders", json=checkout_body(), headers={**headers, "X-Session-ID": "session-one"}
    ).json()["id"]
    wait_for(lambda: Order.get_by_id(order_id).status == "reserved", what="reservation")
    assert Product.get_by_id(item.id).stock_quantity == 3
    Order.update(reserved_until=utcnow() - timedelta(seconds=1)).where(Order.id == order_id).execute()

    tasks.expire_reservations.apply_async(ignore_result=False).get(timeout=30)
    order = Order.get_by_id(order_id)
    assert order.status == "expired" and not order.stock_held
    assert Product.get_by_id(item.id).stock_quantity == 5
    wait_for(lambda: Order.get_by_id(order_id).payment_status == "voided", what="the void")
    paying = client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    assert paying.status_code == 409 and paying.json()["error"]["code"] == "invalid_state"


def overdue_reservation(user: Any, number: str, **extra: Any) -> Order:
    """A dummy-paid order reserved until a minute ago."""
    return Order.create(
        order_number=number,
        user=user.id,
        status="reserved",
        currency="KRW",
        subtotal=1,
        total=1,
        shipping_address={},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        reserved_until=utcnow() - timedelta(minutes=1),
        **extra,
    )


def test_a_reservation_with_payment_in_flight_is_not_expired(make_user: Any) -> None:
    from models.orders.pipeline import expire_reservations

    user, _ = make_user()
    order = overdue_reservation(user, "T-1", payment_submitted_at=utcnow())
    with events.collecting() as emitted:
        assert expire_reservations() == 0
    assert emitted == []
    assert Order.get_by_id(order.id).status == "reserved"


def test_a_payment_submitted_while_the_job_selected_its_orders_keeps_the_reservation(make_user: Any) -> None:
    """POST /pay commits between the expiry job's selection (the order was unpaid then) and its
    lock on the order: the job re-checks the payment under the lock and leaves the order reserved
    for the capture in flight (PAYMENT_GRACE), as its selection would have."""
    from models.infra.db import db
    from models.orders import payment_steps
    from models.orders.pipeline import expire_reservations
    from models.orders.states import lock

    user, _ = make_user()
    order = overdue_reservation(user, "T-2")
    outcome: dict[str, Any] = {}

    def the_job() -> None:
        with db.obj.connection_context(), events.collecting() as emitted:
            outcome["expired"] = expire_reservations()
        outcome["emitted"] = emitted

    job = threading.Thread(target=the_job)
    with db.atomic():
        lock(order.id)  # the shopper's POST /pay holds the order...
        job.start()  # ...while the job selects it (no payment yet) and waits for its lock
        wait_for(
            lambda: db.execute_sql("SELECT 1 FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()").fetchone(),
            what="the job to wait for the order's lock",
        )
        with events.collecting():
            payment_steps.submit(order.id, user, {"token": "tok_ok"})
    job.join()
    assert outcome == {"expired": 0, "emitted": []}
    assert Order.get_by_id(order.id).status == "reserved"


def test_abandoned_carts_are_swept(client: Any, worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.infra.settings import get_settings

    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "idle-cart"})
    assert cart.abandoned_sessions(3600) == []
    assert cart.abandoned_sessions(-1) == ["idle-cart"]
    monkeypatch.setenv("ABANDONED_CART_AFTER", "-1")
    get_settings.cache_clear()
    try:
        from models.orders.pipeline import sweep_abandoned_carts

        assert sweep_abandoned_carts() == 1
        assert sweep_abandoned_carts() == 0  # swept once
    finally:
        monkeypatch.delenv("ABANDONED_CART_AFTER")
        get_settings.cache_clear()
    # The cart itself stays until CART_TTL: the shopper can still come back to it.
    assert client.get(f"{API}/cart", headers={"X-Session-ID": "idle-cart"}).json()["item_count"] == 1
