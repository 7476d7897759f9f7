"""What a run is judged by: the database's integrity after the load, and the targets of issue 18,
each a ratio to a baseline measured in the same run (medians)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def integrity(placed: int) -> dict[str, Any]:
    """No oversell, no order stuck or lost, no confirmed order unpaid, a stock ledger that sums to
    every product's stock: checked in the database after a load. `placed`: the orders the load
    generator saw accepted (202) since the catalogue was seeded."""
    from models.infra.db import db

    time.sleep(3)  # let in-flight tasks (the order emails) finish
    mine = "order_number NOT LIKE 'BENCH-%%'"  # not the dashboard's synthetic orders
    (negative,) = db.obj.execute_sql("SELECT count(*) FROM products WHERE stock_quantity < 0").fetchone()
    rows = db.obj.execute_sql(f"SELECT status, count(*) FROM orders WHERE {mine} GROUP BY status").fetchall()
    (unpaid_confirmed,) = db.obj.execute_sql(
        f"SELECT count(*) FROM orders WHERE {mine} AND status = 'confirmed' AND payment_status <> 'paid'"
    ).fetchone()
    (oversold,) = db.obj.execute_sql("""
        SELECT count(*) FROM (SELECT p.id FROM products p JOIN order_items i ON i.product_id = p.id
        JOIN orders o ON o.id = i.order_id AND o.stock_held GROUP BY p.id
        HAVING p.stock_quantity + sum(i.quantity) <> 1000000) AS t""").fetchone()
    (ledger_off,) = db.obj.execute_sql("""
        SELECT count(*) FROM products p LEFT JOIN (SELECT product_id, sum(delta) AS total FROM stock_ledger
        GROUP BY product_id) AS l ON l.product_id = p.id WHERE COALESCE(l.total, 0) <> p.stock_quantity""").fetchone()
    statuses = {status: count for status, count in rows}
    return {
        "orders_by_status": statuses,
        "negative_stock": negative,
        "stock_not_conserved": oversold,
        "confirmed_unpaid": unpaid_confirmed,
        "stuck_pending": statuses.get("pending", 0),
        # Every shopper pays the order once it is reserved and waits for the outcome: one still
        # reserved had its payment lost on the way.
        "stuck_reserved": statuses.get("reserved", 0),
        "lost": max(placed - sum(statuses.values()), 0),
        "ledger_not_summing": ledger_off,
    }


PROBLEMS = (
    "negative_stock",
    "stock_not_conserved",
    "confirmed_unpaid",
    "stuck_pending",
    "stuck_reserved",
    "lost",
    "ledger_not_summing",
)


Measure = Callable[[dict[str, Any]], float | None]


def ratio_of(value: str, base: str) -> Measure:
    """figure.field over baseline.field, both of this run; None when either was not measured."""

    def measure(f: dict[str, Any]) -> float | None:
        (key, field), (base_key, base_field) = value.split("."), base.split(".")
        if key not in f or base_key not in f or not f[base_key].get(base_field):
            return None
        return float(f[key][field]) / float(f[base_key][base_field])

    return measure


def cpu_ratio(f: dict[str, Any]) -> float | None:
    """App CPU per confirmed order (web + worker + PostgreSQL + Redis) over the CPU of one no-op
    chain (worker + Redis + the process publishing the chains, in the web's place)."""
    order = f.get("checkout", {}).get("cpu")
    chain = f.get("noop_chain", {}).get("cpu")
    if not order or not chain or not chain["counted_ms"]:
        return None
    return float(order["counted_ms"]) / float(chain["counted_ms"])


def problems(f: dict[str, Any]) -> float | None:
    checks = [f[key] for key in ("integrity", "integrity_after_scaling") if key in f]
    return float(sum(check.get(name, 0) for check in checks for name in PROBLEMS)) if checks else None


def errors(f: dict[str, Any]) -> float:
    """Error responses (and socket errors) in every measured scenario, and pipeline orders that failed."""
    return float(sum(int(v.get("errors", 0)) + int(v.get("failed", 0)) for v in f.values() if isinstance(v, dict)))


COUNTS = {"integrity", "errors"}  # targets that count problems rather than compare with a baseline
BARE, REDIS = "baseline_bare_json.rps", "baseline_one_redis.rps"
# (key, target, measure, comparison, threshold)
RULES: list[tuple[str, str, Measure, str, float]] = [
    ("status_304", "status poll, If-None-Match (304) / bare JSON", ratio_of("status_poll_304.rps", BARE), ">=", 0.4),
    ("status_200", "status poll, 200 / bare JSON", ratio_of("status_poll.rps", BARE), ">=", 0.3),
    (
        "pipeline_rate",
        "confirmed orders/s (32 shoppers) / no-op 3-task chains/s",
        ratio_of("checkout.orders_per_s", "noop_chain.chains_per_s"),
        ">=",
        0.6,
    ),
    ("pipeline_cpu", "app CPU per confirmed order / CPU per no-op chain", cpu_ratio, "<=", 1.5),
    (
        "pay_alone",
        "pay → confirmed p50, one shopper alone / idle no-op chain p50",
        ratio_of("checkout_one_shopper.pay_to_confirmed_p50_ms", "noop_chain.chain_idle_p50_ms"),
        "<=",
        1.0,
    ),
    (
        "pay_p99",
        "pay → confirmed p99, 32 shoppers / one shopper alone's p50",
        ratio_of("checkout.pay_to_confirmed_p99_ms", "checkout_one_shopper.pay_to_confirmed_p50_ms"),
        "<=",
        4.0,
    ),
    ("listing", "GET /products?category=… / bare JSON", ratio_of("products_list_category.rps", BARE), ">=", 0.8),
    ("product", "GET /products/{id} / bare JSON", ratio_of("product_by_id.rps", BARE), ">=", 0.8),
    ("cart_read", "GET /cart / one Redis command", ratio_of("cart_read.rps", REDIS), ">=", 1.5),
    ("cart_add", "POST /cart/items / one Redis command", ratio_of("cart_add.rps", REDIS), ">=", 1.5),
    ("integrity", "integrity problems after each pipeline run (count)", problems, "<=", 0),
    ("errors", "error responses and failed orders in the measured scenarios", errors, "<=", 0),
]


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value, its threshold and whether it passed (None: not
    measured in this run, e.g. left out with --only)."""
    out = []
    for key, label, measure, op, threshold in RULES:
        value = measure(figures)
        passed = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
        out.append(
            {
                "key": key,
                "target": label,
                "measured": None if value is None else round(value, 4),
                "threshold": f"{op} {threshold:g}",
                "passed": passed,
                "ratio": key not in COUNTS,
            }
        )
    return out
