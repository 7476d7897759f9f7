"""Pricing a cart for checkout: the one function behind both POST /cart/quote and POST /orders, so a
quote is exactly what the order would charge and fails with exactly the same errors."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import Value, fn

from models.cart import store as cart_store
from models.errors import Conflict, InvalidInput
from models.infra.db import select_rows
from models.orders.pricing import Totals, compute_totals
from models.tables import Product


@dataclass(frozen=True)
class PricedCart:
    lines: list[tuple[Product, int]]  # (product row, quantity), in product-id order
    totals: Totals


def price_cart(cart_id: str, shipping_method: str, discount_code: str | None, user_id: int | None = None) -> PricedCart:
    """The cart's lines at the catalogue's current prices, and its totals.

    Reads the products from the database (not a cache): what an order is charged is never stale.
    Raises InvalidInput empty_cart, Conflict product_unavailable (deleted or unpublished products),
    Conflict insufficient_stock (more units than are in stock now), DiscountRefused discount_invalid /
    discount_expired / discount_exhausted / discount_min_subtotal (user_id: the signed-in customer,
    whose per-customer limits apply; None for a guest or an anonymous quote).
    """
    quantities = cart_store.get_quantities(cart_id)
    if not quantities:
        raise InvalidInput("empty_cart", "The cart is empty.")
    # One statement for any number of lines, built and prepared once (models/infra/db.py).
    found = select_rows(
        Product,
        "quote:products",
        lambda: Product.select().where(Product.id == fn.ANY(Value([0], unpack=False))),
        list(quantities),
    )
    products = {p.id: p for p in found}
    missing = sorted(pid for pid in quantities if pid not in products or not products[pid].is_published)
    if missing:
        raise Conflict(
            "product_unavailable", "Some products in the cart are no longer sold; remove them.", product_ids=missing
        )
    lines = [(products[pid], qty) for pid, qty in sorted(quantities.items())]
    short = [
        {"product_id": p.id, "sku": p.sku, "requested": qty, "available": max(p.stock_quantity, 0)}
        for p, qty in lines
        if p.track_inventory and p.stock_quantity < qty
    ]
    if short:
        raise Conflict("insufficient_stock", "The cart holds more than is in stock; lower the quantities.", lines=short)
    totals = compute_totals([(p.price, q) for p, q in lines], shipping_method, discount_code, user_id)
    return PricedCart(lines, totals)
