"""Helpers for the real-gateway tests: a shopper with a reserved Stripe or Toss order, read over
HTTP, and the beat jobs run as beat runs them (through the dispatcher, on the real worker)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from models.tables import Order, OrderEvent, Product, WebhookEvent, utcnow
from tests.support import checkout_body, register_shopper, wait_for

API = "/api/v1"


def reserved(
    client: Any, method: str, email: str = "ana@example.com", stock: int = 5, quantity: int = 2, price: int = 15000
) -> tuple[dict[str, str], dict[str, Any], Product]:
    """A shopper's order paid with `method`, reserved and prepared; returns (headers, order JSON, product)."""
    headers = register_shopper(client, email)
    sku = f"SKU-{method}-{email.split('@')[0]}"
    item = Product.create(
        sku=sku, name=f"Tee {sku}", slug=sku.lower(), price=price, stock_quantity=stock, tags=[], images=[]
    )
    session = {"X-Session-ID": f"session-{email.split('@')[0]}"}
    assert (
        client.post(
            f"{API}/cart/items", json={"product_id": item.id, "quantity": quantity}, headers=session
        ).status_code
        == 200
    )
    placed = client.post(f"{API}/orders", json=checkout_body(payment_method=method), headers={**headers, **session})
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    order = wait_for(
        lambda: (o := get(client, headers, order_id))["payment"]["next_action"] and o,
        timeout=20,
        what="the payment to be prepared",
    )
    return headers, order, item


def confirmed_with_stripe(client: Any, fake_stripe: Any) -> tuple[dict[str, str], dict[str, Any], Product, str]:
    """A shopper's Stripe order, paid in the browser, handed in and captured: (headers, order JSON,
    product, payment intent id)."""
    headers, order, item = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    return headers, order, item, intent_id


def get(client: Any, headers: dict[str, str], order_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_order(
    client: Any,
    headers: dict[str, str],
    order_id: int,
    status: str,
    payment_status: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = get(client, headers, order_id)
        ok = order["status"] == status and payment_status in (None, order["payment_status"])
        return order if ok else None

    return wait_for(
        reached, timeout=timeout, interval=0.1, what=f"order {order_id} to be {status}/{payment_status or 'any'}"
    )


def event_types(order_id: int) -> list[str]:
    return [e.type for e in OrderEvent.select().where(OrderEvent.order == order_id).order_by(OrderEvent.id)]


def webhook_rows(order_id: int) -> int:
    return WebhookEvent.select().where(WebhookEvent.order == order_id).count()


def run_beat(job: Any, **kwargs: Any) -> Any:
    """What beat does: run the job's domain function through the dispatcher (its follow-ups go to
    the real worker)."""
    from tasks.dispatch import perform

    return perform(job, **kwargs)


def reconcile_all(later: timedelta = timedelta(minutes=6)) -> int:
    """The reconciliation beat job as if `later` had passed: longer than PAYMENT_RECONCILE_AFTER (5
    minutes), so every candidate is due, and shorter than the 20 minutes after which it flags."""
    from models.orders import payment_sync

    return int(run_beat(payment_sync.due_for_reconciliation, now=utcnow() + later))


def expire_all(now: datetime | None = None) -> int:
    from models.orders import pipeline

    return int(run_beat(pipeline.expire_reservations, now=now or utcnow() + timedelta(hours=2)))


def stock(item: Product) -> int:
    return int(Product.get_by_id(item.id).stock_quantity)


def order_row(order_id: int) -> Order:
    return Order.get_by_id(order_id)
