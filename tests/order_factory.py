"""Orders made directly in the database, in a given state, for tests of what happens after payment
(shipping, tracking, emails) that need no checkout first."""

from __future__ import annotations

import itertools
from typing import Any

from models.tables import Order, OrderItem, User, utcnow

_numbers = itertools.count(1)
ADDRESS = {
    "recipient_name": "김민지",
    "phone": "010-1234-5678",
    "postal_code": "04524",
    "address_line1": "세종대로 110",
    "address_line2": "3층",
    "city": "서울특별시 중구",
}


def make_order(user: User, status: str = "confirmed", product_name: str = "Linen Overshirt", **overrides: Any) -> Order:
    """A paid order of two lines (2 x 12,000 + 1 x 9,000, 3,000 shipping, 3,300 off: 32,700 KRW)."""
    n = next(_numbers)
    now = utcnow()
    fields: dict[str, Any] = {
        "order_number": f"ORD-20261130-T{n:07d}",
        "user": user.id,
        "status": status,
        "payment_status": "paid",
        "currency": "KRW",
        "subtotal": 33000,
        "shipping_fee": 3000,
        "discount_amount": 3300,
        "discount_code": "WELCOME10",
        "total": 32700,
        "shipping_address": ADDRESS,
        "shipping_method": "standard",
        "payment_method": "dummy",
        "payment_gateway": "dummy",
        "payment_transaction_id": f"dummy_{n}",
        "paid_at": now,
        "created_at": now,
        "updated_at": now,
    }
    fields.update(overrides)
    order = Order.create(**fields)
    OrderItem.create(
        order=order.id, product_name=product_name, product_sku="SKU-LINEN", unit_price=12000, quantity=2, subtotal=24000
    )
    OrderItem.create(
        order=order.id, product_name="Cotton Socks", product_sku="SKU-SOCKS", unit_price=9000, quantity=1, subtotal=9000
    )
    return order
