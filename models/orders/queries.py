"""Reading orders: the caller's list, one order with everything, and the cheap status row."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peewee import SQL, NodeList, fn

from models.errors import NotFound
from models.infra.db import select_rows, tuples
from models.tables import Order, OrderEvent, OrderItem, Shipment


def _owned(query: Any, user_id: int | None) -> Any:
    return query if user_id is None else query.where(Order.user == user_id)


@dataclass(frozen=True)
class OrderView:
    """An order with everything its page shows, read in one place so rendering never queries."""

    order: Order
    items: list[OrderItem]
    events: list[OrderEvent]
    shipment: Shipment | None = None  # what the carrier last said, once shipped


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    item_counts: dict[int, int]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


# The order's lines and timeline come with its row, each aggregated by PostgreSQL into one JSON
# array: one round trip for the page instead of three. POST /orders and /pay answer with this page
# before their task is published, so it is also that much sooner that the task starts.
LINES = NodeList(
    (
        SQL("(SELECT coalesce(json_agg(i ORDER BY i.id), '[]') FROM order_items AS i WHERE i.order_id ="),
        Order.id,
        SQL(")"),
    )
).alias("page_lines")
_TIMELINE = NodeList(
    (
        SQL("(SELECT coalesce(json_agg(e ORDER BY e.at, e.id), '[]') FROM order_events AS e WHERE e.order_id ="),
        Order.id,
        SQL(")"),
    )
).alias("page_timeline")


def get(order_id: int, user_id: int | None, *, guest: bool = False) -> OrderView:
    """The order with items and events; user_id=None for admins, guest=True for a guest's order
    (its token named order_id). Raises NotFound order_not_found."""

    def one() -> Any:
        query = _owned(Order.select(Order, LINES, _TIMELINE).where(Order.id == 0), None if user_id is None else 0)
        return query.where(Order.user.is_null()) if guest else query

    # Every order page reads this: its statement is built once (models/infra/db.py).
    found = select_rows(
        Order, f"order_page:{user_id is None}:{guest}", one, order_id, *([] if user_id is None else [user_id])
    )
    if not found:
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    order = found[0]
    page: Any = order  # the two aggregates arrive as attributes of the row, decoded by psycopg2
    items = [OrderItem(**line) for line in page.page_lines]
    # JSON has no timestamps: `at` arrives as PostgreSQL's ISO 8601 text, with its offset.
    events = [OrderEvent(**{**event, "at": datetime.fromisoformat(event["at"])}) for event in page.page_timeline]
    shipment = Shipment.get_or_none(Shipment.order == order.id) if order.shipped_at else None
    return OrderView(order, items, events, shipment)


def list_for_user(user_id: int, page: int, page_size: int, status: str | None) -> OrderPage:
    """One page of the user's orders, newest first, with each order's item count."""
    where = [Order.user == user_id] + ([Order.status == status] if status else [])
    rows = list(
        Order.select(Order, fn.COUNT(Order.id).over().alias("total_count"))
        .where(*where)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .paginate(page, page_size)
    )
    # total_count: the window's alias, which peewee sets on each row (not a field its stubs know).
    total = rows[0].total_count if rows else Order.select().where(*where).count()  # type: ignore[attr-defined]
    counts: dict[int, int] = {}
    if rows:
        counts = {
            oid: int(qty)
            for oid, qty in tuples(
                OrderItem.select(OrderItem.order, fn.SUM(OrderItem.quantity))
                .where(OrderItem.order.in_([r.id for r in rows]))
                .group_by(OrderItem.order)
            )
        }
    return OrderPage(rows, counts, page, page_size, total)
