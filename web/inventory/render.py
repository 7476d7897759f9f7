"""Stock ledger entries as the contract's JSON."""

from __future__ import annotations

from typing import Any

from models.stock.ledger import Entry
from web.render import iso


def entry_json(entry: Entry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "id": entry.id,
        "delta": entry.delta,
        "stock_after": entry.stock_after,
        "reason": entry.reason,
        "order_id": entry.order_id,
        "actor": entry.actor,
        "note": entry.note,
        "at": iso(entry.at),
    }
