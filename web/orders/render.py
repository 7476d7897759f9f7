"""Orders as the contract's JSON (from what models.orders.queries read: rendering never queries)."""

from __future__ import annotations

from typing import Any

from models.infra.settings import get_settings
from models.orders.queries import OrderPage, OrderView
from models.tables import Order, OrderEvent, OrderItem
from web.render import iso
from web.shipping.render import tracking_json

MONEY = ("subtotal", "shipping_fee", "discount_amount", "total")


def order_etag(order_id: int, version: int) -> str:
    """The ETag of an order's version: GET /orders/{id}/status sends it, and the 202s of checkout
    and payment send it for the order they show, so a storefront can long-poll at once."""
    return f'"o{order_id}v{version}"'


def _payment(order: Order) -> dict[str, Any]:
    settings = get_settings()
    next_action = order.payment_next_action
    if order.status != "reserved" or order.payment_status not in ("pending", "authorized"):
        next_action = None  # paid, waiting for a deposit, or closed: nothing left for the client to do
    elif next_action and order.payment_gateway == "stripe":
        next_action = {**next_action, "publishable_key": settings.stripe_publishable_key}
    elif next_action and order.payment_gateway == "toss":
        next_action = {**next_action, "client_key": settings.toss_client_key}
    account = (order.payment_details or {}).get("virtual_account")
    return {
        "gateway": order.payment_gateway,
        "amount": order.total,
        "currency": order.currency,
        "status": order.payment_status,
        "transaction_id": order.payment_transaction_id,
        "next_action": next_action,
        "virtual_account": {
            name: account.get(name) for name in ("bank", "bank_code", "account_number", "due_date", "holder")
        }
        if account
        else None,
    }


def _item(item: OrderItem, currency: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "product_id": item.product_id,
        "product_name": item.product_name,
        "product_sku": item.product_sku,
        "product_image": item.product_image,
        "unit_price": item.unit_price,
        "quantity": item.quantity,
        "subtotal": item.subtotal,
        "currency": currency,
    }


def _event(event: OrderEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "at": iso(event.at),
        "detail": event.detail,
        "task_id": event.task_id,
    }


def _guest(order: Order) -> dict[str, Any] | None:
    if order.user_id is not None:
        return None
    return {"email": order.guest_email, "phone": order.guest_phone, "full_name": order.guest_name}


def order_summary(order: Order, item_count: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": order.id,
        "order_number": order.order_number,
        "status": order.status,
        "payment_status": order.payment_status,
        "currency": order.currency,
        "item_count": item_count,
        "shipping_method": order.shipping_method,
        "payment_method": order.payment_method,
        "version": order.version,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }
    out.update({name: getattr(order, name) for name in MONEY})
    return out


def order_json(view: OrderView, admin: bool = False) -> dict[str, Any]:
    """The full order: items, totals, payment, timeline, and tracking once shipped; for admins, why
    its payment needs a person (payment_flag)."""
    order, items, events = view.order, view.items, view.events
    out = order_summary(order, sum(i.quantity for i in items))
    out.update(
        {
            "user_id": order.user_id,
            "guest": _guest(order),
            "items": [_item(i, order.currency) for i in items],
            "shipping_address": order.shipping_address,
            "tracking_number": order.tracking_number,
            "carrier": order.carrier,
            "discount_code": order.discount_code,
            "failure_reason": order.failure_reason,
            "failure_detail": order.failure_detail,
            "reserved_until": iso(order.reserved_until),
            "paid_at": iso(order.paid_at),
            "shipped_at": iso(order.shipped_at),
            "delivered_at": iso(order.delivered_at),
            "cancelled_at": iso(order.cancelled_at),
            "payment": _payment(order),
            "events": [_event(e) for e in events],
            "tracking": tracking_json(order, events, view.shipment),
        }
    )
    if admin:
        out["payment_flag"] = (
            None
            if order.payment_flag is None
            else {"reason": order.payment_flag, "flagged_at": iso(order.payment_flagged_at)}
        )
    return out


def order_page(page: OrderPage) -> dict[str, Any]:
    return {
        "items": [order_summary(o, page.item_counts.get(o.id, 0)) for o in page.orders],
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": page.pages,
    }


def status_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "order_number": row["order_number"],
        "status": row["status"],
        "payment_status": row["payment_status"],
        "version": row["version"],
        "updated_at": iso(row["updated_at"]),
    }
