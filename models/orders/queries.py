"""Reading orders: the caller's list, one order with everything, and the cheap status row."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from peewee import fn

from models.accounts import service as accounts
from models.accounts import tokens
from models.errors import NotFound
from models.infra.db import db, tuples
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


def get(order_id: int, user_id: int | None, *, guest: bool = False) -> OrderView:
    """The order with items and events; user_id=None for admins, guest=True for a guest's order
    (its token named order_id). Raises NotFound order_not_found."""
    query = _owned(Order.select().where(Order.id == order_id), user_id)
    order = (query.where(Order.user.is_null()) if guest else query).first()
    if order is None:
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    items = list(OrderItem.select().where(OrderItem.order == order.id).order_by(OrderItem.id))
    events = list(OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.at, OrderEvent.id))
    shipment = Shipment.get_or_none(Shipment.order == order.id) if order.shipped_at else None
    return OrderView(order, items, events, shipment)


STATUS_SQL = """
SELECT o.id, o.order_number, o.status, o.payment_status, o.version, o.updated_at
FROM users u JOIN orders o ON o.id = %s AND (o.user_id = u.id OR u.is_admin)
WHERE u.id = %s AND u.token_version = %s AND u.is_active"""


def status_for_token(access_token: str, order_id: int) -> dict[str, Any]:
    """The status row for the token's user, checked and read in one query (the polling path).

    Raises AuthError not_authenticated / token_expired, NotFound order_not_found.
    """
    claims = tokens.verify(access_token, tokens.ACCESS)
    row = db.obj.execute_sql(STATUS_SQL, (order_id, claims.user_id, claims.version)).fetchone()
    if row is None:
        accounts.user_for(claims)  # raises when the token's user is the problem
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    return dict(zip(("id", "order_number", "status", "payment_status", "version", "updated_at"), row, strict=True))


def status_for_guest(order_id: int) -> dict[str, Any]:
    """The status row of a guest's order (its order token named order_id); raises NotFound order_not_found."""
    row = (
        Order.select(Order.id, Order.order_number, Order.status, Order.payment_status, Order.version, Order.updated_at)
        .where(Order.id == order_id, Order.user.is_null())
        .dicts()
        .first()
    )
    if row is None:
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    return dict(row)


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
