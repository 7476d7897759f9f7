"""Stock: reserve <-> release, side by side. Both run inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import fn

from models.infra.db import db
from models.tables import Order, OrderItem, Product


@dataclass(frozen=True)
class Shortage:
    product_id: int
    sku: str
    requested: int
    available: int


def _lines(order: Order) -> list[tuple[int, int]]:
    """(product_id, quantity) per product, in primary-key order so that locks never deadlock."""
    rows = (OrderItem.select(OrderItem.product, fn.SUM(OrderItem.quantity).alias("qty"))
            .where(OrderItem.order == order.id, OrderItem.product.is_null(False))
            .group_by(OrderItem.product).order_by(OrderItem.product).tuples())
    return [(int(pid), int(qty)) for pid, qty in rows]


def reserve(order: Order) -> list[Shortage]:
    """Take every line's units out of stock, or none: returns the shortages (empty on success).

    Each product is decremented by a conditional UPDATE (stock_quantity >= qty) in product-id
    order; on any shortage the savepoint rolls back every decrement made so far.
    """
    lines = _lines(order)
    shortages: list[Shortage] = []
    with db.atomic() as savepoint:
        for product_id, qty in lines:
            updated = (Product.update(stock_quantity=Product.stock_quantity - qty)
                       .where(Product.id == product_id, Product.track_inventory == True,  # noqa: E712
                              Product.stock_quantity >= qty)
                       .execute())
            if updated:
                continue
            product = Product.get_or_none(Product.id == product_id)
            if product is not None and not product.track_inventory:
                continue
            shortages.append(Shortage(product_id, product.sku if product else "?", qty,
                                      product.stock_quantity if product else 0))
        if shortages:
            savepoint.rollback()
    return shortages


def release(order: Order) -> None:
    """Put the order's units back on the shelf (the undo of reserve). Caller clears stock_held."""
    for product_id, qty in _lines(order):
        (Product.update(stock_quantity=Product.stock_quantity + qty)
         .where(Product.id == product_id, Product.track_inventory == True)  # noqa: E712
         .execute())


def low_stock(order: Order) -> list[int]:
    """Products of this order now at or under their low-stock threshold."""
    ids = [pid for pid, _ in _lines(order)]
    if not ids:
        return []
    query = Product.select(Product.id).where(
        Product.id.in_(ids), Product.track_inventory == True,  # noqa: E712
        Product.stock_quantity <= Product.low_stock_threshold)
    return [p.id for p in query]
