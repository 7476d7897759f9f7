"""Staff's stock changes (POST /admin/products/{id}/stock): restock, adjust or take back a return,
by a delta or to a count, each a ledger row; a change that takes a product to or under its low-stock
threshold asks for the low-stock alert, once per crossing."""

from __future__ import annotations

from dataclasses import dataclass

from models import events
from models.errors import Conflict, NotFound, validation_error
from models.events import AlertLowStock
from models.infra.db import db
from models.stock import ledger
from models.tables import Order, Product

STAFF_REASONS = ("restock", "adjustment", "return")
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Adjusted:
    stock_quantity: int
    entry: ledger.Entry | None  # None: a `set` to the count already on hand changes nothing


def adjust(
    product_id: int,
    actor: str,
    reason: str,
    delta: int | None = None,
    set_to: int | None = None,
    note: str | None = None,
    order_id: int | None = None,
) -> Adjusted:
    """Change a product's stock by delta or to set_to, with its ledger row.

    Raises NotFound product_not_found / order_not_found, Conflict insufficient_stock (the stock would
    go below zero), InvalidInput validation_error.
    """
    if (delta is None) == (set_to is None):
        raise validation_error({"body": "Give exactly one of delta or set."})
    if reason not in STAFF_REASONS:
        raise validation_error({"reason": f"One of {', '.join(STAFF_REASONS)}."})
    if not 0 < product_id <= MAX_ID:
        raise NotFound("product_not_found", "No such product.")
    with db.atomic():
        if order_id is not None and not Order.select().where(Order.id == order_id).exists():
            raise NotFound("order_not_found", "No such order.", order_id=order_id)
        if set_to is not None:
            result = ledger.set_to(product_id, set_to, reason, actor, note, order_id)
            if result is None:
                raise NotFound("product_not_found", "No such product.")
            stock, entry = result
        else:
            assert delta is not None
            entry = ledger.change(product_id, delta, reason, actor, order_id, note)
            if entry is None:
                current = Product.select(Product.stock_quantity).where(Product.id == product_id).scalar()
                if current is None:
                    raise NotFound("product_not_found", "No such product.")
                raise Conflict(
                    "insufficient_stock",
                    f"Only {current} in stock: cannot take away {-delta}.",
                    stock_quantity=current,
                    delta=delta,
                )
            stock = entry.stock_after
    if entry is not None and entry.crossed_low_stock:
        events.emit(AlertLowStock(product_id, entry.id))
    return Adjusted(stock, entry)


def ledger_page(product_id: int, page: int, page_size: int) -> tuple[int, ledger.LedgerPage]:
    """(stock on hand, one page of the product's ledger, newest first). Raises NotFound product_not_found."""
    stock = (
        Product.select(Product.stock_quantity).where(Product.id == product_id).scalar()
        if 0 < product_id <= MAX_ID
        else None
    )
    if stock is None:
        raise NotFound("product_not_found", "No such product.")
    return stock, ledger.entries(product_id, page, page_size)
