"""Stock: reserve <-> release, side by side. Both run inside the caller's transaction, and every
unit that moves is a stock ledger row written by the same statement (models/stock/ledger.py).

A release gives back what the order's own reservation rows took, never its lines read against the
products as they are now: staff may switch a product's track_inventory while an order holds it,
and the flag of the moment would give back units never taken, or keep units that were."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.infra.db import db, prepared, tuples
from models.stock import ledger
from models.tables import Order, OrderItem, Product


@dataclass(frozen=True)
class Shortage:
    product_id: int | None  # None: the product was deleted after the order was placed
    sku: str
    requested: int
    available: int


@dataclass(frozen=True)
class Reservation:
    shortages: list[Shortage] = field(default_factory=list)  # empty: every line is held
    # Ledger rows that took a product to or under its low-stock threshold (one alert each).
    crossed: list[ledger.Entry] = field(default_factory=list)


def _lines(order: Order) -> tuple[list[tuple[int, int]], bool]:
    """(product_id, quantity) per product, in primary-key order so that locks never deadlock, and
    whether a line's product was deleted since the order was placed (its product_id is NULL); from
    the lines that payment_steps.with_payer() read with the order when it did (no query)."""
    read: Any = order
    if hasattr(read, "item_lines"):
        pairs = [(product_id, int(quantity)) for product_id, quantity in read.item_lines]
    else:
        pairs = list(tuples(OrderItem.select(OrderItem.product, OrderItem.quantity).where(OrderItem.order == order.id)))
    quantities: dict[int, int] = {}
    for product_id, quantity in pairs:
        if product_id is not None:
            quantities[int(product_id)] = quantities.get(int(product_id), 0) + int(quantity)
    return sorted(quantities.items()), any(product_id is None for product_id, _ in pairs)


def _gone(order_id: int) -> list[Shortage]:
    """The order's lines whose product was deleted, by their snapshot SKU: none of it is available."""
    rows = OrderItem.select(OrderItem.product_sku, OrderItem.quantity).where(
        OrderItem.order == order_id, OrderItem.product.is_null()
    )
    return [Shortage(None, sku, int(quantity), 0) for sku, quantity in tuples(rows.order_by(OrderItem.id))]


def reserve(order: Order, actor: str = "task:pipeline.reserve_stock") -> Reservation:
    """Take every line's units out of stock, or none: returns the shortages (empty on success).

    Each product is decremented by a conditional UPDATE (stock_quantity >= qty) in product-id
    order; on any shortage the savepoint rolls back every decrement (and ledger row) made so far.
    An order of one product needs no savepoint (two statements fewer): its one UPDATE either
    happened or did not. A line whose product was deleted since the order was placed is a
    shortage of everything it asks for, and then nothing is taken: the order cannot be filled.
    """
    lines, gone = _lines(order)
    if gone:
        return Reservation(_gone(order.id))
    if len(lines) <= 1:
        return _take(lines, actor, order.id)
    with db.atomic() as savepoint:
        reservation = _take(lines, actor, order.id)
        if reservation.shortages:
            savepoint.rollback()
    return reservation


def _take(lines: list[tuple[int, int]], actor: str, order_id: int) -> Reservation:
    shortages: list[Shortage] = []
    crossed: list[ledger.Entry] = []
    for product_id, qty in lines:
        entry = ledger.change(product_id, -qty, "reservation", actor, order_id, tracked_only=True)
        if entry is not None:
            if entry.crossed_low_stock:
                crossed.append(entry)
            continue
        product = Product.get_or_none(Product.id == product_id)
        if product is not None and not product.track_inventory:
            continue
        shortages.append(
            Shortage(product_id, product.sku if product else "?", qty, product.stock_quantity if product else 0)
        )
    return Reservation(shortages) if shortages else Reservation([], crossed)


# Per product, the units the order's reservation took and no release has given back yet (the
# stock_ledger_order_id index), in product-id order so that locks never deadlock. A staff return
# that names the order is stock coming back from a customer, not units the order holds.
_HELD = prepared(
    """SELECT product_id, -sum(delta) FROM stock_ledger
       WHERE order_id = %s AND reason IN ('reservation', 'release')
       GROUP BY product_id HAVING sum(delta) < 0 ORDER BY product_id"""
)


def release(order: Order, actor: str) -> None:
    """Put the units the order took back on the shelf (the undo of reserve), whether or not their
    products track inventory now; a second run finds nothing held. Caller clears stock_held."""
    for product_id, qty in db.execute_sql(_HELD, (order.id,)).fetchall():
        ledger.change(product_id, int(qty), "release", actor, order.id)
