"""Orders as the contract's JSON."""

from __future__ import annotations

import math
from typing import Any

from models.infra.settings import get_settings
from models.orders import queries as order_queries
from models.tables import Order, OrderEvent, OrderItem
from web.render import iso

MONEY = ("subtotal", "shipping_fee", "discount_amount", "total")


def _payment(order: Order) -> dict[str, Any]:
    next_action = order.payment_next_action
    if next_action and order.payment_gateway == "stripe":
        next_action = {**next_action, "publishable_key": get_settings().stripe_publishable_key}
    return {"gateway": order.payment_gateway, "amount": order.total, "currency": order.currency,
            "status": order.payment_status, "transaction_id": order.payment_transaction_id,
            "next_action": next_action if order.status == "reserved" else None}


def _item(item: OrderItem, currency: str) -> dict[str, Any]:
    return {"id": item.id, "product_id": item.product_id, "product_name": item.product_name,
            "product_sku": item.product_sku, "product_image": item.product_image, "unit_price": item.unit_price,
            "quantity": item.quantity, "subtotal": item.subtotal, "currency": currency}


def _event(event: OrderEvent) -> dict[str, Any]:
    return {"type": event.type, "from_status": event.from_status, "to_status": event.to_status,
            "at": iso(event.at), "detail": event.detail, "task_id": event.task_id}


def order_summary(order: Order, item_count: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": order.id, "order_number": order.order_number, "status": order.status,
        "payment_status": order.payment_status, "currency": order.currency, "item_count": item_count,
        "shipping_method": order.shipping_method, "payment_method": order.payment_method,
        "version": order.version, "created_at": iso(order.created_at), "updated_at": iso(order.updated_at),
    }
    out.update({name: getattr(order, name) for name in MONEY})
    return out


def order_json(order_id: int, user_id: int | None = None) -> dict[str, Any]:
    """The full order; user_id limits it to that user's orders (NotFound otherwise)."""
    order, items, events = order_queries.get(order_id, user_id)
    out = order_summary(order, sum(i.quantity for i in items))
    out.update({
        "user_id": order.user_id, "items": [_item(i, order.currency) for i in items],
        "shipping_address": order.shipping_address, "tracking_number": order.tracking_number,
        "carrier": order.carrier, "discount_code": order.discount_code,
        "failure_reason": order.failure_reason, "failure_detail": order.failure_detail,
        "reserved_until": iso(order.reserved_until), "paid_at": iso(order.paid_at),
        "shipped_at": iso(order.shipped_at), "delivered_at": iso(order.delivered_at),
        "cancelled_at": iso(order.cancelled_at), "payment": _payment(order),
        "events": [_event(e) for e in events],
    })
    return out


def order_page(user_id: int, page: int, page_size: int, status: str | None) -> dict[str, Any]:
    rows, counts, total = order_queries.list_for_user(user_id, page, page_size, status)
    return {"items": [order_summary(r, counts.get(r.id, 0)) for r in rows], "page": page, "page_size": page_size,
            "total": total, "pages": math.ceil(total / page_size) if total else 0}


def status_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "order_number": row["order_number"], "status": row["status"],
            "payment_status": row["payment_status"], "version": row["version"], "updated_at": iso(row["updated_at"])}
