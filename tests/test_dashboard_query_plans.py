"""On 100,000 orders (two lines each, a year of them) and 100,000 products every figure of the admin dashboard is one
statement served by an index, never a sequential scan of orders, their lines or the products, and
the whole dashboard answers in one call.

Run with `-s` to see each plan's indexes and execution time."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from models.infra.db import db
from models.reports import dashboard
from tests.support import bulk_load

ORDERS = 100_000
PRODUCTS = """
INSERT INTO products (sku, name, slug, description, price, stock_quantity, low_stock_threshold, track_inventory,
                      tags, images, is_published, is_featured, created_at, updated_at)
SELECT 'P-' || i, 'Product ' || i, 'product-' || i, '', 1000 + i, i %% 400, 5, i %% 11 <> 0, '[]', '[]', true,
       false, now() - i * interval '1 minute', now()
FROM generate_series(1, 100000) AS i"""
# Statuses in proportions a running shop has: most orders delivered, a few waiting in each state.
ORDERS_SQL = f"""
INSERT INTO orders (order_number, user_id, status, payment_status, currency, subtotal, shipping_fee, discount_amount,
                    total, shipping_address, shipping_method, payment_method, payment_gateway, stock_held,
                    discount_held, version, created_at, updated_at, paid_at)
SELECT 'B-' || i, %(user)s, s.status,
       CASE WHEN s.status IN ('confirmed', 'shipped', 'delivered') THEN 'paid'
            WHEN s.status = 'cancelled' THEN 'refunded' ELSE 'pending' END,
       'KRW', 20000, 0, 0, 20000, '{{}}', 'standard', 'dummy', 'dummy', false, false, 1, t.at, t.at + interval '1 hour',
       CASE WHEN s.status IN ('confirmed', 'shipped', 'delivered', 'cancelled') THEN t.at + interval '5 minutes' END
FROM generate_series(1, {ORDERS}) AS i
CROSS JOIN LATERAL (SELECT timestamptz '2025-12-01 00:00:00+00' + (i * interval '315 seconds') AS at) AS t
CROSS JOIN LATERAL (SELECT CASE WHEN i %% 100 < 70 THEN 'delivered' WHEN i %% 100 < 80 THEN 'confirmed'
                                WHEN i %% 100 < 85 THEN 'shipped' WHEN i %% 100 < 90 THEN 'cancelled'
                                WHEN i %% 100 < 95 THEN 'failed' WHEN i %% 100 < 98 THEN 'expired'
                                WHEN i %% 100 < 99 THEN 'reserved' ELSE 'pending' END AS status) AS s"""
ITEMS = """
INSERT INTO order_items (order_id, product_id, product_name, product_sku, unit_price, quantity, subtotal)
SELECT o.id, b.m + (o.id * 7 + k) %% 1000, 'Product', 'P', 10000, 1 + o.id %% 3, 10000 * (1 + o.id %% 3)
FROM orders o CROSS JOIN generate_series(0, 1) AS k CROSS JOIN (SELECT min(id) AS m FROM products) AS b"""

# figure -> an index its plan must use
EXPECTED = {
    "revenue_by_day": "orders_paid_at_paid",
    "orders_by_status": "orders_created_at",
    "top_products": "orders_paid_at_paid",
    "low_stock": "products_low_stock_created_at",
    "pipeline": "orders_status_created_at",
    "payments_flagged": "orders_payment_flagged",
    "tracking_failing": "shipments_failing",
}
SCANNED = {"orders", "order_items", "products", "shipments"}


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node] + [n for child in node.get("Plans", []) for n in _walk(child)]


def test_every_dashboard_figure_uses_an_index_on_100k_orders(make_user: Any) -> None:
    user, _ = make_user()
    loaded = bulk_load(
        PRODUCTS,
        (ORDERS_SQL, {"user": user.id}),
        ITEMS,
        # a few payments reconciliation could not settle
        "UPDATE orders SET payment_flag = 'the gateway says voided', payment_flagged_at = now() WHERE id %% 1000 = 0",
        # Every shipped or delivered order has its shipment; a few shipped ones fail to track.
        """INSERT INTO shipments (order_id, level, delivered, failures, created_at, stopped_reason)
           SELECT id, CASE WHEN status = 'delivered' THEN 6 ELSE 3 END, status = 'delivered',
                  CASE WHEN status = 'shipped' AND id %% 5 = 0 THEN 4 ELSE 0 END, created_at,
                  CASE WHEN status = 'delivered' THEN 'delivered' END
           FROM orders WHERE status IN ('shipped', 'delivered')""",
        # fresh statistics and visibility map, as autovacuum keeps them
        *(f"VACUUM ANALYZE {table}" for table in ("products", "orders", "order_items", "shipments")),
    )
    print("\n" + "\n".join(loaded))
    window = dashboard.Window(date(2026, 10, 1), date(2026, 10, 30))
    failures, report = [], []
    for figure, sql in dashboard.QUERIES.items():
        (raw,) = db.obj.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, window.params()).fetchone()
        plan = raw if isinstance(raw, list) else json.loads(raw)
        nodes = _walk(plan[0]["Plan"])
        used = sorted({n["Index Name"] for n in nodes if "Index Name" in n})
        seq_scans = sorted(
            {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in SCANNED}
        )
        millis = plan[0]["Execution Time"]
        report.append(f"{figure:18} {millis:8.2f} ms  {', '.join(used)}")
        if seq_scans or EXPECTED[figure] not in used:
            failures.append(
                f"{figure}: seq scans of {seq_scans}, indexes {used}, {millis:.1f} ms\n" + json.dumps(plan, indent=1)
            )
    print("\n" + "\n".join(report))
    assert not failures, "\n\n".join(failures)

    figures = dashboard.dashboard(window)
    assert len(figures["revenue_by_day"]) == 30
    placed_and_paid = sum(figures["orders_by_status"].get(s, 0) for s in ("confirmed", "shipped", "delivered"))
    assert abs(figures["totals"]["orders"] - placed_and_paid) <= 1  # paid 5 minutes after placing: the edges
    assert figures["top_products"] and figures["low_stock_total"] > 0
    assert figures["pipeline"]["waiting"]["pending"]["count"] == ORDERS // 100
    assert figures["pipeline"]["payments_flagged"] == ORDERS // 1000
    (failing,) = db.obj.execute_sql("SELECT count(*) FROM shipments WHERE failures > 0").fetchone()
    assert figures["pipeline"]["tracking_failing"] == failing > 0
