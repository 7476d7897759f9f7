"""Shaping products, addresses and carts into the contract's JSON (kept cheap: listings call these per row)."""

from __future__ import annotations

from typing import Any

from models.cart import Cart
from models.catalog import ProductPage
from models.tables import Address
from web.serializers import iso

_ADMIN_ONLY = ("cost_price",)


def product_json(row: dict[str, Any], is_admin: bool, currency: str) -> dict[str, Any]:
    """A product row (models.catalog.PRODUCT_COLUMNS) as the API shows it to this caller."""
    out = dict(row)
    tracked = row["track_inventory"]
    stock = row["stock_quantity"]
    out["currency"] = currency
    out["available_quantity"] = stock if tracked else None
    out["in_stock"] = not tracked or stock > 0
    out["created_at"] = iso(row["created_at"])
    out["updated_at"] = iso(row["updated_at"])
    if is_admin:
        out["low_stock"] = tracked and stock <= row["low_stock_threshold"]
    else:
        for name in _ADMIN_ONLY:
            out.pop(name, None)
    return out


def product_page_json(page: ProductPage, is_admin: bool, currency: str) -> dict[str, Any]:
    return {"items": [product_json(row, is_admin, currency) for row in page.items], "page": page.page,
            "page_size": page.page_size, "total": page.total, "pages": page.pages}


def address_json(address: Address) -> dict[str, Any]:
    return {
        "id": address.id,
        "recipient_name": address.recipient_name,
        "phone": address.phone,
        "postal_code": address.postal_code,
        "address_line1": address.address_line1,
        "address_line2": address.address_line2,
        "city": address.city,
        "is_default": address.is_default,
        "created_at": iso(address.created_at),
        "updated_at": iso(address.updated_at),
    }


def cart_json(cart: Cart, currency: str) -> dict[str, Any]:
    return {
        "session_id": cart.session_id,
        "items": [
            {"product_id": line.product_id, "name": line.name, "slug": line.slug, "sku": line.sku,
             "image": line.image, "unit_price": line.unit_price, "quantity": line.quantity,
             "subtotal": line.subtotal, "currency": currency, "in_stock": line.in_stock,
             "available_quantity": line.available_quantity}
            for line in cart.lines
        ],
        "item_count": cart.item_count,
        "subtotal": cart.subtotal,
        "currency": currency,
        "updated_at": iso(cart.updated_at),
    }
