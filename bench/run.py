"""`make bench`: measure the running system and its baselines in one run; write bench/results/.

    python -m bench.run [--quick] [--only catalogue cart status pipeline scaling dashboard]

Services: BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else embedded ones under var/bench.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / "var" / "bench" / "logs"
APP_PORT, BASE_PORT = 18301, 18302
SCENARIOS = ("catalogue", "cart", "status", "pipeline", "scaling", "dashboard")


def services() -> list[Any]:
    import embedded

    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get("BENCH_" + name):
            os.environ[name] = os.environ["BENCH_" + name]
        else:
            os.environ.pop(name, None)
    env, handles = embedded.start_services(ROOT / "var" / "bench", database="shop_bench")
    os.environ.update(env)
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))  # the bench's own, for this run
    return handles


def seed(products: int) -> list[int]:
    """Reset the catalogue to `products` rows with plenty of stock; returns their ids."""
    from models.infra.db import db

    db.obj.execute_sql(
        "TRUNCATE products, orders, order_items, order_events, idempotency_keys, email_log, stock_ledger CASCADE"
    )
    db.obj.execute_sql(f"""
        INSERT INTO products (sku, name, slug, description, price, stock_quantity, low_stock_threshold,
                              track_inventory, category, tags, images, is_published, is_featured,
                              created_at, updated_at)
        SELECT 'B-' || i, 'Bench item ' || i, 'bench-item-' || i, 'soft cotton ' || i, 1000 + i %% 50000,
               1000000, 5, true, 'cat-' || (i %% 20), jsonb_build_array('tag-' || (i %% 30)), '["/img.jpg"]',
               true, i %% 25 = 0, now() - i * interval '1 second', now()
        FROM generate_series(1, {products}) AS i""")
    # Each product's opening balance in the stock ledger, as a product created through the API has.
    db.obj.execute_sql("""INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor, note, at)
                          SELECT id, stock_quantity, stock_quantity, 'initial', 'system:bench', 'seed', now()
                          FROM products""")
    db.obj.execute_sql("ANALYZE products")
    return [pid for (pid,) in db.obj.execute_sql("SELECT id FROM products ORDER BY id").fetchall()]


def shoppers(count: int) -> list[str]:
    from models.accounts import service as accounts
    from models.tables import User

    hashed = accounts.hash_password("bench-password")
    tokens = []
    for index in range(count):
        user, _ = User.get_or_create(
            email=f"bench{index}@example.com", defaults={"full_name": "Bench", "hashed_password": hashed}
        )
        tokens.append(accounts.issue_tokens(user).access_token)
    return tokens


def fill_cart(shop: str, session: str, product_ids: list[int]) -> None:
    import httpx2 as httpx

    with httpx.Client(base_url=shop, headers={"X-Session-ID": session}) as http:
        for product_id in product_ids:
            http.post("/api/v1/cart/items", json={"product_id": product_id, "quantity": 1}).raise_for_status()
        assert len(http.get("/api/v1/cart").json()["items"]) == len(product_ids)


def ratio(value: float, base: float) -> float:
    return round(value / base, 2) if base else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures to quote")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args(argv)
    seconds, runs = (3, 1) if args.quick else (10, 3)
    os.environ.setdefault("BCRYPT_ROUNDS", "4")
    handles = services()
    from bench import cpu, dashboard, load, pipeline, servers
    from models.infra.db import init_db
    from models.infra.redis_client import get_redis
    from models.schema import migrate

    load.require_wrk()
    init_db()
    migrate()
    get_redis().delete("bench:cart")
    get_redis().hset("bench:cart", mapping={str(i): 1 for i in range(1, 4)})
    env = dict(os.environ)
    results: dict[str, Any] = {"figures": {}, "ratios": {}}
    figures, started = results["figures"], []
    try:
        product_ids = seed(1000)
        app = servers.uvicorn("web.app:app", APP_PORT, env, LOGS / "app.log")
        base = servers.uvicorn("bench.baseline_app:app", BASE_PORT, env, LOGS / "baseline.log")
        started += [app, base]
        shop, baseline = f"http://127.0.0.1:{APP_PORT}", f"http://127.0.0.1:{BASE_PORT}"
        measure = lambda url, scripts=None, extra=None: load.measure(  # noqa: E731
            url,
            scripts,
            runs=runs,
            seconds=seconds,
            env={"BENCH_MIN_ID": str(min(product_ids)), "BENCH_MAX_ID": str(max(product_ids)), **(extra or {})},
        )
        figures["baseline_bare_json"] = measure(baseline + "/bare")
        figures["baseline_one_sql"] = measure(baseline + "/sql")
        figures["baseline_one_redis"] = measure(baseline + "/redis")
        if "catalogue" in args.only:
            figures["products_list_category"] = measure(shop + "/api/v1/products?category=cat-3")
            figures["product_by_id"] = measure(shop, ["product_ids.lua"])
        if "cart" in args.only:
            fill_cart(shop, "bench-read-cart", product_ids[:3])  # read a cart of three lines, as /redis does
            figures["cart_read"] = measure(
                shop + "/api/v1/cart", extra={"BENCH_HEADERS": "X-Session-ID: bench-read-cart"}
            )
            figures["cart_add"] = measure(shop, ["cart_add.lua"])
        # The baselines again, pooled with the first runs: ratios against the machine as it was
        # both before and after the scenarios.
        for name, path in (
            ("baseline_bare_json", "/bare"),
            ("baseline_one_sql", "/sql"),
            ("baseline_one_redis", "/redis"),
        ):
            figures[name] = load.pooled(figures[name], measure(baseline + path))
        tokens = shoppers(32)
        worker = servers.celery_worker(2, env, LOGS / "worker.log")
        started.append(worker)
        if "status" in args.only:
            import httpx2 as httpx

            order = pipeline.checkout_load(shop, tokens[:1], product_ids, 1.0)  # one confirmed order to poll
            with httpx.Client(base_url=shop) as http:
                auth = {"Authorization": f"Bearer {tokens[0]}"}
                listing = http.get("/api/v1/orders", headers=auth).json()["items"][0]
                etag = http.get(f"/api/v1/orders/{listing['id']}/status", headers=auth).headers["etag"]
            url = f"{shop}/api/v1/orders/{listing['id']}/status"
            figures["status_poll"] = measure(url, extra={"BENCH_HEADERS": f"Authorization: Bearer {tokens[0]}"})
            figures["status_poll_304"] = measure(
                url, extra={"BENCH_HEADERS": f"Authorization: Bearer {tokens[0]}|If-None-Match: {etag}"}
            )
            del order
        if "pipeline" in args.only:
            # Latency as one shopper sees it on an otherwise idle system, then throughput at saturation.
            figures["checkout_one_shopper"] = pipeline.checkout_load(
                shop, tokens[:1], product_ids, seconds, poll_interval=0.005
            )
            # Below saturation: what a shopper sees while the machine still has room.
            figures["checkout_8_shoppers"] = pipeline.checkout_load(shop, tokens[:8], product_ids, seconds)
            meter = cpu.Meter(
                {
                    "web": cpu.in_group(app.popen.pid),
                    "worker": cpu.in_group(worker.popen.pid),
                    "postgres": cpu.named("postgres"),
                    "redis": cpu.named("redis-server"),
                    "load generator": lambda: [os.getpid()],
                }
            )
            meter.start()
            figures["checkout"] = pipeline.checkout_load(shop, tokens, product_ids, seconds * 2)
            figures["checkout"]["cpu"] = cpu_per_order(meter.stop(), figures["checkout"]["confirmed"])
            figures["noop_chain"] = pipeline.noop_chains(300 if args.quick else 2000, in_flight=64)
            figures["integrity"] = integrity()
        if "dashboard" in args.only:  # on the orders the scenarios above left
            admin = {"BENCH_HEADERS": f"Authorization: Bearer {dashboard.admin_token()}"}
            figures["dashboard"] = measure(shop + "/api/v1/admin/dashboard", extra=admin)
        if "scaling" in args.only:
            for count in (1, 4) if args.quick else (1, 2, 4):
                worker.stop()
                worker = servers.celery_worker(count, env, LOGS / f"worker{count}.log")
                started.append(worker)
                run = pipeline.checkout_load(shop, tokens, product_ids, seconds)
                figures[f"checkout_workers_{count}"] = {
                    k: run[k] for k in ("orders_per_s", "pay_to_confirmed_p50_ms", "pay_to_confirmed_p99_ms", "errors")
                }
            figures["integrity_after_scaling"] = integrity()
            for count in (1_000, 10_000, 100_000):
                product_ids = seed(count)
                figures[f"products_list_{count}"] = measure(shop + "/api/v1/products?category=cat-3&sort=price")
        if "dashboard" in args.only:  # last: 100,000 more orders would weigh on every scenario above
            admin = {"BENCH_HEADERS": f"Authorization: Bearer {dashboard.admin_token()}"}
            figures["dashboard_orders"] = dashboard.load_orders(100_000)
            figures["dashboard_100k"] = measure(shop + "/api/v1/admin/dashboard", extra=admin)
    finally:
        for process in reversed(started):
            process.stop()
        import embedded

        embedded.stop_services(handles)
    results.update(machine(), ratios=ratios(figures), quick=args.quick, seconds_per_run=seconds, runs=runs)
    from bench.report import write

    write(results, RESULTS)
    print((RESULTS / "latest.md").read_text())
    return 0


def cpu_per_order(used: dict[str, float], confirmed: int) -> dict[str, Any]:
    """CPU milliseconds each part spent per confirmed order, and the orders/s these cores could
    confirm if the parts used nothing else: the bound on the pipeline's throughput here."""
    per_order = {part: round(seconds * 1000 / max(confirmed, 1), 2) for part, seconds in used.items()}
    total = sum(per_order.values())
    return {
        "ms_per_order": per_order,
        "total_ms_per_order": round(total, 2),
        "busy_cores": round(sum(used.values()), 1),
        "max_orders_per_s_on_these_cores": round((os.cpu_count() or 1) * 1000 / total, 1) if total else None,
    }


def integrity() -> dict[str, Any]:
    """No oversell, no lost orders, a stock ledger that sums to every product's stock: checked in the
    database after a load."""
    from models.infra.db import db

    time.sleep(3)  # let in-flight tasks finish
    (negative,) = db.obj.execute_sql("SELECT count(*) FROM products WHERE stock_quantity < 0").fetchone()
    rows = db.obj.execute_sql("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
    (unpaid_confirmed,) = db.obj.execute_sql(
        "SELECT count(*) FROM orders WHERE status = 'confirmed' AND payment_status <> 'paid'"
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
        "ledger_not_summing": ledger_off,
    }


def ratios(f: dict[str, Any]) -> dict[str, float]:
    bare, sql, one_redis = (f[k]["rps"] for k in ("baseline_bare_json", "baseline_one_sql", "baseline_one_redis"))
    out: dict[str, float] = {}
    for name in ("products_list_category", "product_by_id"):
        if name in f:
            out[f"{name}/one_sql"] = ratio(f[name]["rps"], sql)
            out[f"{name}/bare_json"] = ratio(f[name]["rps"], bare)
    for name in ("cart_read", "cart_add"):
        if name in f:
            out[f"{name}/one_redis"] = ratio(f[name]["rps"], one_redis)
    if "status_poll_304" in f:
        out["status_poll_304/status_poll"] = ratio(f["status_poll_304"]["rps"], f["status_poll"]["rps"])
    if "checkout" in f and "noop_chain" in f:
        out["checkout_orders/noop_chains"] = ratio(f["checkout"]["orders_per_s"], f["noop_chain"]["chains_per_s"])
    return out


def machine() -> dict[str, Any]:
    packages = ("starlette", "uvicorn", "celery", "peewee", "redis", "psycopg2-binary", "orjson")
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: version(p) for p in packages},
        "settings": {"uvicorn_workers": 1, "celery_concurrency": 2, "wrk": "-t1 -c32"},
    }


if __name__ == "__main__":
    sys.exit(main())
