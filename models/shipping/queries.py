"""Reading shipments for operators: a page of them, optionally only those whose tracking fails."""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.shipping.tracking import failing_filter
from models.tables import Order, Shipment


@dataclass(frozen=True)
class ShipmentPage:
    rows: list[tuple[Shipment, Order]]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


def shipments(failing: bool | None, page: int, page_size: int) -> ShipmentPage:
    """Shipments, most recently shipped first; failing=True only the failing ones, False the others."""
    query = Shipment.select(Shipment, Order).join(Order)
    if failing is not None:
        query = query.where(failing_filter() if failing else ~failing_filter())
    total = query.count()
    rows = list(query.order_by(Order.shipped_at.desc(nulls="LAST"), Order.id.desc()).paginate(page, page_size))
    return ShipmentPage([(s, s.order) for s in rows], page, page_size, total)
