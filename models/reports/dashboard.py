"""The admin dashboard: the shop's figures for a window of Asia/Seoul days, each one statement that
an index serves (tests/test_dashboard_query_plans.py shows the plans on 100k orders).

- revenue and orders per day: orders whose payment was captured and kept (payment_status 'paid'),
  by the Seoul day of paid_at (orders_paid_at_paid);
- orders by status: orders placed in the window (orders_created_at, the order desk's);
- top products: units and revenue of the paid orders' lines, ranked both ways in one statement (the
  lines are read per order through order_items_order_id, so the cost follows the window, not the
  size of order_items);
- low stock: tracked products at or under their threshold (products_low_stock_created_at);
- pipeline: orders waiting in each state that is not final, and the age of the oldest of them
  since it was placed (orders_status_created_at, index-only), and the payments
  reconciliation flagged for a person (orders_payment_flagged) and the shipments whose tracking
  fails (shipments_failing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models.infra.db import db
from models.shipping.tracking import FAILING_AFTER

TIMEZONE = "Asia/Seoul"
WAITING_STATUSES = ("pending", "reserved", "confirmed", "shipped")  # the states that are not final
TZ = ZoneInfo(TIMEZONE)
TOP = 10
LOW_STOCK_LIMIT = 50

REVENUE_BY_DAY = f"""
SELECT (paid_at AT TIME ZONE '{TIMEZONE}')::date AS day, count(*), COALESCE(sum(total), 0)
FROM orders WHERE payment_status = 'paid' AND paid_at >= %(start)s AND paid_at < %(end)s
GROUP BY 1 ORDER BY 1"""

ORDERS_BY_STATUS = """
SELECT status, count(*) FROM orders WHERE created_at >= %(start)s AND created_at < %(end)s GROUP BY status"""

TOP_PRODUCTS = """
WITH sold AS (
  SELECT i.product_id, max(i.product_name) AS name, sum(i.quantity) AS units, sum(i.subtotal) AS revenue
  FROM orders o CROSS JOIN LATERAL (SELECT product_id, product_name, quantity, subtotal FROM order_items
                                    WHERE order_id = o.id OFFSET 0) AS i  -- OFFSET 0: kept per order
  WHERE o.payment_status = 'paid' AND o.paid_at >= %(start)s AND o.paid_at < %(end)s
  GROUP BY i.product_id
), ranked AS (
  SELECT sold.*, row_number() OVER (ORDER BY units DESC, revenue DESC, product_id) AS by_units,
         row_number() OVER (ORDER BY revenue DESC, units DESC, product_id) AS by_revenue
  FROM sold
)
SELECT product_id, name, units, revenue, by_units, by_revenue FROM ranked
WHERE by_units <= %(top)s OR by_revenue <= %(top)s"""

LOW_STOCK = """
SELECT id, sku, name, stock_quantity, low_stock_threshold, count(*) OVER () FROM products
WHERE track_inventory = TRUE AND stock_quantity <= low_stock_threshold
ORDER BY stock_quantity, id LIMIT %(limit)s"""

_waiting = ", ".join(f"'{status}'" for status in WAITING_STATUSES)
PIPELINE = f"""
SELECT status, count(*), EXTRACT(EPOCH FROM now() - min(created_at)) FROM orders
WHERE status IN ({_waiting}) GROUP BY status"""

# Payments reconciliation could not settle (models/orders/payment_sync.py flags them): orders_payment_flagged.
PAYMENTS_FLAGGED = "SELECT count(*) FROM orders WHERE payment_flag IS NOT NULL"
# Shipments whose carrier tracking fails: FAILING_AFTER polls failed in a row, or polling gave up
# (models/shipping/tracking.py's failing_filter, with the predicate of the shipments_failing index).
TRACKING_FAILING = f"SELECT count(*) FROM shipments WHERE failures >= {FAILING_AFTER} OR stopped_reason = 'gave_up'"

QUERIES = {
    "revenue_by_day": REVENUE_BY_DAY,
    "orders_by_status": ORDERS_BY_STATUS,
    "top_products": TOP_PRODUCTS,
    "low_stock": LOW_STOCK,
    "pipeline": PIPELINE,
    "payments_flagged": PAYMENTS_FLAGGED,
    "tracking_failing": TRACKING_FAILING,
}


@dataclass(frozen=True)
class Window:
    first: date  # Seoul days, both included
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), TZ)

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "top": TOP, "limit": LOW_STOCK_LIMIT}

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def today() -> date:
    return datetime.now(TZ).date()


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return list(db.execute_sql(sql, params).fetchall())


def dashboard(window: Window) -> dict[str, Any]:
    """Every figure for the window (see the module docstring), as plain data."""
    params = window.params()
    per_day = {day: (int(n), int(revenue)) for day, n, revenue in _rows(REVENUE_BY_DAY, params)}
    revenue_by_day = [
        {"day": day, "orders": per_day.get(day, (0, 0))[0], "revenue": per_day.get(day, (0, 0))[1]}
        for day in window.days()
    ]
    by_status = {status: int(n) for status, n in _rows(ORDERS_BY_STATUS, params)}
    sold = _rows(TOP_PRODUCTS, params)

    def top(rank: int) -> list[dict[str, Any]]:
        ranked = sorted((row for row in sold if row[rank] <= TOP), key=lambda row: row[rank])
        return [
            {"product_id": pid, "name": name, "units": int(units), "revenue": int(revenue)}
            for pid, name, units, revenue, *_ in ranked
        ]

    low = _rows(LOW_STOCK, params)
    waiting = {
        status: {"count": int(n), "oldest_age_s": round(float(age), 1)} for status, n, age in _rows(PIPELINE, params)
    }
    return {
        "revenue_by_day": revenue_by_day,
        "totals": {
            "orders": sum(d["orders"] for d in revenue_by_day),
            "revenue": sum(d["revenue"] for d in revenue_by_day),
        },
        "orders_by_status": by_status,
        "top_products": top(4),
        "top_products_by_revenue": top(5),
        "low_stock": [
            {"product_id": pid, "sku": sku, "name": name, "stock_quantity": stock, "low_stock_threshold": threshold}
            for pid, sku, name, stock, threshold, _ in low
        ],
        "low_stock_total": int(low[0][5]) if low else 0,
        "pipeline": {
            "waiting": {status: waiting.get(status, {"count": 0, "oldest_age_s": None}) for status in WAITING_STATUSES},
            "payments_flagged": _count(PAYMENTS_FLAGGED),
            "tracking_failing": _count(TRACKING_FAILING),
        },
    }


def _count(sql: str) -> int:
    return int(db.execute_sql(sql).fetchone()[0])
