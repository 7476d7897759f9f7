"""What the customer email templates see: plain values built from rows already read (no queries).

An order email's context:
    shop_name, shop_url        SHOP_NAME, STOREFRONT_URL (None when unset)
    customer_name
    order                      number, created_at, currency, subtotal, shipping_fee, discount_amount,
                               discount_code, total, shipping_method, payment_method, url, items
                               [{name, sku, quantity, unit_price, subtotal}], address {...}
    payment                    paid (money was taken), refund_amount, virtual_account
                               ({bank, account_number, holder, due_date} or None)
    tracking                   {carrier_name, tracking_number, url} once shipped, else None
    event_at                   when what the email reports happened (the deadline, for `expired`
                               and `awaiting_deposit`)
    reason                     cancelled: "customer" or "admin"
The abandoned-cart reminder's: shop_name, shop_url, customer_name, cart {items, subtotal, currency, url}.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from models.infra.settings import Settings
from models.shipping import carriers
from models.tables import Order, OrderEvent, OrderItem, utcnow

PAID = ("paid", "refunded")


def _last(events: Iterable[OrderEvent], event_type: str) -> OrderEvent | None:
    found = None
    for event in events:
        if event.type == event_type:
            found = event
    return found


def virtual_account(order: Order) -> dict[str, Any] | None:
    """The Toss virtual account the customer pays into, when the payment is one."""
    account = (order.payment_details or {}).get("virtual_account")
    if not isinstance(account, dict):
        return None
    return {
        "bank": account.get("bank", ""),
        "account_number": account.get("account_number", ""),
        "holder": account.get("holder"),
        "due_date": account.get("due_date"),
    }


def tracking(order: Order) -> dict[str, Any] | None:
    if not order.tracking_number:
        return None
    carrier = carriers.get(order.carrier)
    return {
        "carrier_name": carrier.name if carrier else (order.carrier or ""),
        "tracking_number": order.tracking_number,
        "url": carrier.url_for(order.tracking_number) if carrier else None,
    }


def _event_at(kind: str, order: Order, events: list[OrderEvent], account: dict[str, Any] | None) -> Any:
    if kind in ("expired", "awaiting_deposit"):
        return (account or {}).get("due_date") or order.reserved_until
    if kind == "refunded":
        refund = _last(events, "payment_refunded")
        return refund.at if refund else utcnow()
    moment: dict[str, datetime | None] = {
        "confirmation": order.paid_at,
        "shipped": order.shipped_at,
        "delivered": order.delivered_at,
        "cancelled": order.cancelled_at,
    }
    return moment.get(kind) or order.updated_at


def order_context(
    kind: str, order: Order, items: list[OrderItem], events: list[OrderEvent], customer_name: str, settings: Settings
) -> dict[str, Any]:
    """The template values of an order email of this kind."""
    shop_url = settings.storefront_url or None
    account = virtual_account(order)
    refund = _last(events, "payment_refunded")
    cancelled = _last(events, "order_cancelled")
    address = dict(order.shipping_address or {})
    for name in ("recipient_name", "phone", "postal_code", "address_line1", "address_line2", "city"):
        address.setdefault(name, None)
    return {
        "shop_name": settings.shop_name,
        "shop_url": shop_url,
        "customer_name": customer_name,
        "order": {
            "number": order.order_number,
            "created_at": order.created_at,
            "currency": order.currency,
            "subtotal": order.subtotal,
            "shipping_fee": order.shipping_fee,
            "discount_amount": order.discount_amount,
            "discount_code": order.discount_code,
            "total": order.total,
            "shipping_method": order.shipping_method,
            "payment_method": order.payment_method,
            "address": address,
            "url": f"{shop_url}/orders/{order.id}" if shop_url else None,
            "items": [
                {
                    "name": i.product_name,
                    "sku": i.product_sku,
                    "quantity": i.quantity,
                    "unit_price": i.unit_price,
                    "subtotal": i.subtotal,
                }
                for i in items
            ],
        },
        "payment": {
            "paid": order.payment_status in PAID or order.paid_at is not None,
            "refund_amount": int((refund.detail or {}).get("amount") or order.total) if refund else order.total,
            "virtual_account": account,
        },
        "tracking": tracking(order),
        "event_at": _event_at(kind, order, events, account),
        "reason": "customer" if cancelled and (cancelled.detail or {}).get("by") == "customer" else "admin",
    }


def cart_context(
    session_id: str, lines: list[dict[str, Any]], currency: str, customer_name: str, settings: Settings
) -> dict[str, Any]:
    """The template values of an abandoned-cart reminder; lines are {name, sku, quantity, unit_price, subtotal}."""
    shop_url = settings.storefront_url or None
    return {
        "shop_name": settings.shop_name,
        "shop_url": shop_url,
        "customer_name": customer_name,
        "cart": {
            "items": lines,
            "subtotal": sum(line["subtotal"] for line in lines),
            "currency": currency,
            "url": f"{shop_url}/cart" if shop_url else None,
        },
    }
