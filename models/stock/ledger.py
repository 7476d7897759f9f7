"""The stock ledger: every change of a product's stock_quantity writes its row in the same statement
(an UPDATE ... RETURNING feeding an INSERT), so a product's deltas always sum to its stock on hand,
whoever changes it and however the changes interleave.

Reasons: initial (the opening balance of a new product), reservation and release (an order's
units, models/orders/inventory.py), restock, adjustment and return (staff, models/stock/admin.py
and the catalogue's PATCH). Actors: "user:<id>", "task:<task name>", "system:<what>".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.infra.db import db, prepared

ENTRY_COLUMNS = ("id", "product_id", "delta", "stock_after", "reason", "order_id", "actor", "note", "at")
_COLUMNS = ", ".join(ENTRY_COLUMNS)

# One statement: the conditional UPDATE (never below zero), its ledger row, and whether the change
# took the product to or under its low-stock threshold from above it (a crossing: one alert each).
_CHANGE = f"""
WITH changed AS (
  UPDATE products SET stock_quantity = stock_quantity + %(delta)s
  WHERE id = %(product_id)s AND stock_quantity + %(delta)s >= 0 {{tracked}}
  RETURNING id, stock_quantity, low_stock_threshold, track_inventory
), entry AS (
  INSERT INTO stock_ledger (product_id, delta, stock_after, reason, order_id, actor, note, at)
  SELECT id, %(delta)s, stock_quantity, %(reason)s, %(order_id)s, %(actor)s, %(note)s, now() FROM changed
  RETURNING {_COLUMNS}
)
SELECT entry.*, changed.track_inventory AND entry.stock_after <= changed.low_stock_threshold
                AND entry.stock_after - entry.delta > changed.low_stock_threshold
FROM entry, changed"""
# Prepared once per connection (models/infra/db.py): every reservation runs one per product.
_CHANGE_ANY = prepared(_CHANGE.format(tracked=""))
_CHANGE_TRACKED = prepared(_CHANGE.format(tracked="AND track_inventory"))


@dataclass(frozen=True)
class Entry:
    id: int
    product_id: int
    delta: int
    stock_after: int
    reason: str
    order_id: int | None
    actor: str
    note: str | None
    at: datetime
    crossed_low_stock: bool = False  # this change took the product to or under its threshold


@dataclass(frozen=True)
class LedgerPage:
    items: list[Entry]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


def change(
    product_id: int,
    delta: int,
    reason: str,
    actor: str,
    order_id: int | None = None,
    note: str | None = None,
    tracked_only: bool = False,
) -> Entry | None:
    """Add delta to the product's stock and write its ledger row, in the caller's transaction.

    None (and nothing written) when the product does not exist, the stock would go below zero, or
    (tracked_only) the product does not track inventory. delta must not be 0.
    """
    assert delta != 0, "a ledger entry changes the stock"
    params = {
        "product_id": product_id,
        "delta": delta,
        "reason": reason,
        "order_id": order_id,
        "actor": actor[:80],
        "note": note,
    }
    row = db.execute_sql(_CHANGE_TRACKED if tracked_only else _CHANGE_ANY, params).fetchone()
    return Entry(*row) if row else None


def set_to(
    product_id: int, quantity: int, reason: str, actor: str, note: str | None = None, order_id: int | None = None
) -> tuple[int, Entry | None] | None:
    """Set the product's stock to quantity (the delta is recorded): (stock, entry or None when it was
    already quantity); None when the product does not exist. Locks the product row."""
    current = db.execute_sql("SELECT stock_quantity FROM products WHERE id = %s FOR UPDATE", (product_id,)).fetchone()
    if current is None:
        return None
    if current[0] == quantity:
        return quantity, None
    entry = change(product_id, quantity - current[0], reason, actor, order_id, note)
    assert entry is not None  # the row is locked and quantity >= 0
    return entry.stock_after, entry


def record_opening(product_id: int, quantity: int, actor: str, note: str | None = None) -> Entry | None:
    """The opening balance of a product just inserted with `quantity` in stock (same transaction)."""
    if quantity == 0:
        return None
    row = db.execute_sql(
        f"""INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor, note, at)
            VALUES (%s, %s, %s, 'initial', %s, %s, now()) RETURNING {_COLUMNS}""",
        (product_id, quantity, quantity, actor[:80], note),
    ).fetchone()
    return Entry(*row)


def entries(product_id: int, page: int, page_size: int) -> LedgerPage:
    """One page of a product's ledger, newest first, and how many entries it has (the
    (product_id, id) index serves both)."""
    rows = db.execute_sql(
        f"""SELECT t.n, e.* FROM (SELECT count(*) FROM stock_ledger WHERE product_id = %s) AS t(n)
            LEFT JOIN (SELECT {_COLUMNS} FROM stock_ledger WHERE product_id = %s
                       ORDER BY id DESC LIMIT %s OFFSET %s) AS e ON TRUE ORDER BY e.id DESC""",
        (product_id, product_id, page_size, (page - 1) * page_size),
    ).fetchall()
    total = rows[0][0] if rows else 0
    return LedgerPage([Entry(*row[1:]) for row in rows if row[1] is not None], page, page_size, int(total))


def discrepancies(limit: int = 20) -> list[dict[str, Any]]:
    """Products whose ledger does not sum to their stock on hand (empty when the ledger is whole)."""
    rows = db.execute_sql(
        """SELECT p.id, p.stock_quantity, COALESCE(l.total, 0) FROM products p
           LEFT JOIN (SELECT product_id, sum(delta) AS total FROM stock_ledger GROUP BY product_id) AS l
             ON l.product_id = p.id
           WHERE COALESCE(l.total, 0) <> p.stock_quantity ORDER BY p.id LIMIT %s""",
        (limit,),
    ).fetchall()
    return [{"product_id": pid, "stock_quantity": stock, "ledger_sum": int(total)} for pid, stock, total in rows]
