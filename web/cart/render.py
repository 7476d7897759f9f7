"""Carts as the contract's JSON."""

from __future__ import annotations

from typing import Any

from models.cart.store import Cart
from models.orders.quote import PricedCart
from web.render import iso


def cart_json(cart: Cart, session_id: str | None, currency: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "items": [
            {
                "product_id": line.product_id,
                "name": line.name,
                "slug": line.slug,
                "sku": line.sku,
                "image": line.image,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
                "subtotal": line.subtotal,
                "currency": currency,
                "in_stock": line.in_stock,
                "available_quantity": line.available_quantity,
            }
            for line in cart.lines
        ],
        "item_count": cart.item_count,
        "subtotal": cart.subtotal,
        "currency": currency,
        "updated_at": iso(cart.updated_at),
    }


def quote_json(priced: PricedCart, shipping_method: str, currency: str) -> dict[str, Any]:
    totals = priced.totals
    return {
        "subtotal": totals.subtotal,
        "shipping_fee": totals.shipping_fee,
        "discount_amount": totals.discount_amount,
        "total": totals.total,
        "currency": currency,
        "discount_code": totals.discount_code,
        "shipping_method": shipping_method,
        "item_count": sum(quantity for _, quantity in priced.lines),
    }
