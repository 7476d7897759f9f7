"""The staff's order desk: every customer's orders, newest first, filtered and searched; and one order
with everything an operator needs (who bought it, its events with task ids, the emails sent).

The listing is one SQL statement (the page's rows joined to the count of all matches), built so that
every filter uses an index ending in the sort (models/tables.py; tests/test_admin_order_query_plans.py
shows the plans on 100,000 orders). `q` matches the *start* of an order number, an email (the
account's or a guest's) or a recipient's name, case-insensitively: prefix matches are what a
B-tree pattern index answers on any PostgreSQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peewee import fn

from models.infra.db import db, tuples
from models.orders.queries import OrderView, get
from models.tables import ORDER_RECIPIENT_EXPRESSION, EmailLog, Order, OrderItem, User

_COLUMNS = (
    "id",
    "order_number",
    "user_id",
    "guest_email",
    "guest_name",
    "status",
    "payment_status",
    "currency",
    "subtotal",
    "shipping_fee",
    "discount_amount",
    "total",
    "shipping_method",
    "payment_method",
    "version",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class AdminFilters:
    status: str | None = None
    payment_status: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    q: str | None = None


@dataclass(frozen=True)
class AdminOrderRow:
    order: Order
    email: str | None  # the account's email, or the guest's
    recipient_name: str | None
    item_count: int


@dataclass(frozen=True)
class AdminOrderPage:
    rows: list[AdminOrderRow]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


@dataclass(frozen=True)
class AdminOrderView:
    view: OrderView
    customer: User | None  # None for a guest's order
    emails: list[EmailLog]


def _prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _where(f: AdminFilters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.status is not None:
        clauses.append("o.status = %s")
        params.append(f.status)
    if f.payment_status is not None:
        clauses.append("o.payment_status = %s")
        params.append(f.payment_status)
    if f.created_from is not None:
        clauses.append("o.created_at >= %s")
        params.append(f.created_from)
    if f.created_before is not None:
        clauses.append("o.created_at < %s")
        params.append(f.created_before)
    if f.q:
        # One branch per index; the union of the matching ids is small when q is selective.
        number, lowered = _prefix(f.q.strip().upper()), _prefix(f.q.strip().lower())
        clauses.append(
            "o.id IN (SELECT id FROM orders WHERE order_number LIKE %s"
            " UNION SELECT id FROM orders WHERE guest_email LIKE %s"
            f" UNION SELECT id FROM orders WHERE {ORDER_RECIPIENT_EXPRESSION} LIKE %s"
            " UNION SELECT m.id FROM users mu JOIN orders m ON m.user_id = mu.id WHERE mu.email LIKE %s)"
        )
        params += [number, lowered, lowered, lowered]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def listing_sql(f: AdminFilters, page: int, page_size: int) -> tuple[str, list[Any]]:
    """The one statement behind list_orders: the page (with each order's email and recipient) joined
    to the count of every match."""
    where, params = _where(f)
    columns = ", ".join(f"o.{name}" for name in _COLUMNS)
    rows = (
        f"SELECT {columns}, COALESCE(o.guest_email, u.email) AS email, "
        f"o.shipping_address ->> 'recipient_name' AS recipient_name "
        f"FROM orders o LEFT JOIN users u ON u.id = o.user_id{where} "
        f"ORDER BY o.created_at DESC, o.id DESC LIMIT %s OFFSET %s"
    )
    sql = (
        f"SELECT t.n AS __total, p.* FROM (SELECT count(*) FROM orders o{where}) AS t(n) "
        f"LEFT JOIN ({rows}) AS p ON TRUE ORDER BY p.created_at DESC, p.id DESC"
    )
    return sql, params + params + [page_size, (page - 1) * page_size]


def list_orders(f: AdminFilters, page: int, page_size: int) -> AdminOrderPage:
    """One page of every customer's orders, newest first, and how many match."""
    sql, params = listing_sql(f, page, page_size)
    cursor = db.obj.execute_sql(sql, params)
    names = [c[0] for c in cursor.description][1:]
    total, found = 0, []
    for raw in cursor.fetchall():
        total = raw[0]
        if raw[1] is not None:
            found.append(dict(zip(names, raw[1:], strict=True)))
    counts: dict[int, int] = {}
    if found:
        counts = {
            oid: int(qty)
            for oid, qty in tuples(
                OrderItem.select(OrderItem.order, fn.SUM(OrderItem.quantity))
                .where(OrderItem.order.in_([r["id"] for r in found]))
                .group_by(OrderItem.order)
            )
        }
    rows = [
        AdminOrderRow(
            Order(**{name: r[name] for name in _COLUMNS}), r["email"], r["recipient_name"], counts.get(r["id"], 0)
        )
        for r in found
    ]
    return AdminOrderPage(rows, page, page_size, int(total))


def detail(order_id: int) -> AdminOrderView:
    """The order with items and events, its customer and the emails sent.

    Raises NotFound order_not_found."""
    view = get(order_id, None)
    customer = User.get_or_none(User.id == view.order.user_id) if view.order.user_id is not None else None
    emails = list(EmailLog.select().where(EmailLog.order == order_id).order_by(EmailLog.created_at, EmailLog.id))
    return AdminOrderView(view, customer, emails)
