"""`make bench`: measure the running system and its baselines in one run; write bench/results/; exit
non-zero when a target (bench/checks.py) is missed.

    python -m bench.run [--quick] [--only catalogue cart status pipeline scaling dashboard]

Services: BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else embedded ones under var/bench.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import load  # noqa: E402  (stdlib only: the wrk check runs before any setup)
from bench.progress import Progress, wrk_seconds  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / "var" / "bench" / "logs"
APP_PORT, BASE_PORT, APP2_PORT = 18301, 18302, 18303
SCENARIOS = ("catalogue", "cart", "status", "pipeline", "scaling", "dashboard")
SHOPPERS = 32


def chains(quick: bool) -> int:
    return 300 if quick else 2000


def scaling(quick: bool) -> list[tuple[int, int]]:
    """(web processes, worker processes) of the scaling runs."""
    return [(1, 4), (2, 2)] if quick else [(1, 1), (1, 2), (1, 4), (2, 2), (2, 4)]


def plan(only: list[str], quick: bool, seconds: float, runs: int) -> list[tuple[str, float]]:
    """The steps main() announces, in its order, with their estimated seconds."""
    w = wrk_seconds(seconds, runs)
    steps = [("setup: services, schema, catalogue", 10.0)]
    steps += [(name, w) for name in ("baseline_bare_json", "baseline_one_sql", "baseline_one_redis")]
    if "catalogue" in only:
        steps += [("products_list_category", w), ("product_by_id", w)]
    if "cart" in only:
        steps += [("cart_read", w + 1), ("cart_add", w)]
    steps += [("baselines again", 3 * w), ("shoppers and a worker", 8)]
    if "status" in only:
        steps += [("status_poll", w + 3), ("status_poll_304", w)]
    if "pipeline" in only:
        steps += [("checkout_one_shopper", seconds + 1), ("checkout_8_shoppers", seconds + 1)]
        steps += [(f"checkout ({SHOPPERS} shoppers, CPU metered)", 2 * seconds + 2)]
        steps += [("noop_chain (CPU metered)", chains(quick) / 60 + 3), ("integrity", 4)]
    if "dashboard" in only:
        steps += [("dashboard", w)]
    if "scaling" in only:
        steps += [(f"checkout_web{web}_workers_{n}", seconds + 5 + 3 * (web > 1)) for web, n in scaling(quick)]
        steps += [("integrity_after_scaling", 4)]
        steps += [(f"products_list_{count}", w + count / 10_000) for count in (1_000, 10_000, 100_000)]
    if "dashboard" in only:
        steps += [("dashboard_orders (100,000)", 15), ("dashboard_100k", w)]
    return steps + [("report", 3)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures to quote")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args(argv)
    load.ensure_wrk()  # first: a missing wrk is said (or installed) before minutes of setup
    seconds, runs = (3, 1) if args.quick else (10, 3)
    progress = Progress(plan(args.only, args.quick, seconds, runs))
    progress.step("setup: services, schema, catalogue")
    os.environ.setdefault("BCRYPT_ROUNDS", "4")
    from bench import fixtures

    handles = fixtures.services()
    bench = Bench(args.only, args.quick, seconds, runs, progress)
    try:
        bench.run()
    finally:
        bench.stop()
        import embedded

        embedded.stop_services(handles)
    from bench.checks import targets
    from bench.report import write

    figures = bench.figures
    results: dict[str, Any] = {"figures": figures, **machine(args.quick, seconds, runs)}
    results.update(ratios=ratios(figures), targets=targets(figures))
    results["targets_missed"] = [t["key"] for t in results["targets"] if t["passed"] is False]
    progress.step("report")
    write(results, RESULTS)
    print((RESULTS / "latest.md").read_text(), flush=True)
    progress.done()
    missed = results["targets_missed"]
    note = " (quick run, figures not to quote)" if args.quick else ""
    if missed:
        print(f"{len(missed)} target(s) missed{note}: {', '.join(missed)}", file=sys.stderr, flush=True)
        return 1
    print(f"every measured target met{note}", file=sys.stderr, flush=True)
    return 0


class Bench:
    """One run's processes, figures and load settings; run() goes through the scenarios asked for."""

    def __init__(self, only: list[str], quick: bool, seconds: float, runs: int, progress: Progress) -> None:
        self.only, self.quick, self.seconds, self.runs, self.progress = only, quick, seconds, runs, progress
        self.figures: dict[str, Any] = {}
        self.started: list[Any] = []
        self.placed = 0  # orders accepted since the catalogue was seeded, for the integrity check
        self.env = dict(os.environ)
        self.product_ids: list[int] = []

    def measure(
        self, name: str, url: str, scripts: list[str] | None = None, extra: dict[str, str] | None = None
    ) -> dict[str, Any]:
        self.progress.step(name)
        ids = {"BENCH_MIN_ID": str(min(self.product_ids)), "BENCH_MAX_ID": str(max(self.product_ids))}
        self.figures[name] = load.measure(
            url, scripts, runs=self.runs, seconds=self.seconds, env={**ids, **(extra or {})}
        )
        return self.figures[name]

    def checkout(
        self, step: str, base: str, shoppers: int, seconds: float, key: str, meter: Any = None, **options: Any
    ) -> dict[str, Any]:
        """The checkout pipeline under `shoppers` shoppers, kept as figure `key` (not kept when empty).
        `meter`, when given, reads the CPU from the start of the run until the broker is idle again:
        the confirmation emails, which wait behind the payments while the shoppers keep the worker
        busy, are part of what their orders cost."""
        from bench import pipeline

        self.progress.step(step)
        pipeline.settle()
        if meter is not None:
            meter.start()
        run = pipeline.checkout_load(base, self.tokens[:shoppers], self.product_ids, seconds, **options)
        if meter is not None:
            pipeline.settle()
            run["cpu_used"] = meter.stop()
        self.placed += run["placed"]
        if key:
            self.figures[key] = run
        return run

    def integrity(self, name: str) -> None:
        from bench.checks import integrity

        self.progress.step(name)
        self.figures[name] = integrity(self.placed)

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def run(self) -> None:
        from bench import fixtures, servers
        from models.infra.db import init_db
        from models.infra.redis_client import get_redis
        from models.schema import migrate

        init_db()
        migrate()
        get_redis().delete("bench:cart")
        get_redis().hset("bench:cart", mapping={str(i): 1 for i in range(1, 4)})
        self.product_ids = fixtures.seed(1000)
        self.app = servers.uvicorn("web.app:app", APP_PORT, self.env, LOGS / "app.log")
        self.started.append(self.app)
        base_server = servers.uvicorn("bench.baseline_app:app", BASE_PORT, self.env, LOGS / "baseline.log")
        self.started.append(base_server)
        self.shop, baseline = f"http://127.0.0.1:{APP_PORT}", f"http://127.0.0.1:{BASE_PORT}"
        paths = {"baseline_bare_json": "/bare", "baseline_one_sql": "/sql", "baseline_one_redis": "/redis"}
        first = {name: self.measure(name, baseline + path) for name, path in paths.items()}
        if "catalogue" in self.only:
            self.measure("products_list_category", self.shop + "/api/v1/products?category=cat-3")
            self.measure("product_by_id", self.shop, ["product_ids.lua"])
        if "cart" in self.only:
            fixtures.fill_cart(self.shop, "bench-read-cart", self.product_ids[:3])  # three lines, as /redis reads
            self.measure(
                "cart_read", self.shop + "/api/v1/cart", extra={"BENCH_HEADERS": "X-Session-ID: bench-read-cart"}
            )
            self.measure("cart_add", self.shop, ["cart_add.lua"])
        # The baselines again, pooled with the first runs: ratios against the machine as it was
        # both before and after the scenarios.
        self.progress.step("baselines again")
        for name, path in paths.items():
            again = load.measure(baseline + path, runs=self.runs, seconds=self.seconds)
            self.figures[name] = load.pooled(first[name], again)
        # Done with the baselines: their server's 40 pooled connections would count against the
        # database's max_connections in the runs with 2 web processes and 4 worker processes.
        base_server.stop()
        self.progress.step("shoppers and a worker")
        self.tokens = fixtures.shoppers(SHOPPERS)
        self.worker = servers.celery_worker(2, self.env, LOGS / "worker.log")
        self.started.append(self.worker)
        if "status" in self.only:
            self.status()
        if "pipeline" in self.only:
            self.pipeline()
        if "dashboard" in self.only:  # on the orders the scenarios above left
            self.dashboard("dashboard")
        if "scaling" in self.only:
            self.scaling()
        if "dashboard" in self.only:  # last: 100,000 more orders would weigh on every scenario above
            from bench import dashboard

            self.progress.step("dashboard_orders (100,000)")
            self.figures["dashboard_orders"] = dashboard.load_orders(100_000)
            self.dashboard("dashboard_100k")

    def status(self) -> None:
        import httpx2 as httpx

        from bench import pipeline

        self.progress.step("status_poll")
        run = pipeline.checkout_load(self.shop, self.tokens[:1], self.product_ids, 1.0)  # one order to poll
        self.placed += run["placed"]
        self.figures["status_setup"] = {"errors": run["errors"], "failed": run["failed"]}
        auth = f"Authorization: Bearer {self.tokens[0]}"
        with httpx.Client(base_url=self.shop, headers={"Authorization": f"Bearer {self.tokens[0]}"}) as http:
            order_id = http.get("/api/v1/orders").json()["items"][0]["id"]
            etag = http.get(f"/api/v1/orders/{order_id}/status").headers["etag"]
        url = f"{self.shop}/api/v1/orders/{order_id}/status"
        self.figures["status_poll"] = load.measure(
            url, runs=self.runs, seconds=self.seconds, env={"BENCH_HEADERS": auth}
        )
        self.measure("status_poll_304", url, extra={"BENCH_HEADERS": f"{auth}|If-None-Match: {etag}"})

    def pipeline(self) -> None:
        from bench import cpu, pipeline

        # Latency as one shopper sees it on an otherwise idle system, below saturation, then
        # throughput at saturation with every process's CPU read from /proc. Every shopper polls
        # as the API's documentation advises a storefront to: long polls with If-None-Match.
        self.checkout("checkout_one_shopper", self.shop, 1, self.seconds, "checkout_one_shopper")
        self.checkout("checkout_8_shoppers", self.shop, 8, self.seconds, "checkout_8_shoppers")
        parts = {
            "web": cpu.in_group(self.app.popen.pid),
            "worker": cpu.in_group(self.worker.popen.pid),
            "postgres": cpu.postgres_server(),
            "redis": cpu.redis_server(),
            "load generator": lambda: [os.getpid()],
        }
        run = self.checkout(
            f"checkout ({SHOPPERS} shoppers, CPU metered)",
            self.shop,
            SHOPPERS,
            self.seconds * 2,
            "checkout",
            meter=cpu.Meter(parts),
        )
        used = run.pop("cpu_used")
        run["cpu"] = cpu.per_unit(used, run["confirmed"], counted=("web", "worker", "postgres", "redis"))
        total = sum(run["cpu"]["ms_per_unit"].values())
        run["cpu"]["max_orders_per_s_on_these_cores"] = (
            round((os.cpu_count() or 1) * 1000 / total, 1) if total else None
        )
        # The no-op chains' publisher is this process: it plays the web's part (publishing, and
        # waiting for each chain's end). PostgreSQL is read for reference; no-op tasks do not use it.
        self.progress.step("noop_chain (CPU metered)")
        chain_parts = {
            "worker": parts["worker"],
            "redis": parts["redis"],
            "publisher": parts["load generator"],
            "postgres": parts["postgres"],
        }
        pipeline.settle()
        chain = pipeline.noop_chains(chains(self.quick), in_flight=64, meter=cpu.Meter(chain_parts))
        chain["cpu"] = cpu.per_unit(chain.pop("cpu_used"), chain["chains"], counted=("worker", "redis", "publisher"))
        self.figures["noop_chain"] = chain
        self.integrity("integrity")

    def dashboard(self, name: str) -> None:
        from bench import dashboard

        admin = {"BENCH_HEADERS": f"Authorization: Bearer {dashboard.admin_token()}"}
        self.measure(name, self.shop + "/api/v1/admin/dashboard", extra=admin)

    def scaling(self) -> None:
        from bench import fixtures, servers

        webs: dict[int, tuple[Any, str]] = {1: (self.app, self.shop)}
        workers = 2
        for web, count in scaling(self.quick):
            if web not in webs:  # uvicorn --workers N: N processes accepting on one socket
                process = servers.uvicorn("web.app:app", APP2_PORT, self.env, LOGS / f"app{web}.log", workers=web)
                self.started.append(process)
                webs[web] = (process, f"http://127.0.0.1:{APP2_PORT}")
            if count != workers:
                self.worker.stop()
                self.worker = servers.celery_worker(count, self.env, LOGS / f"worker{count}.log")
                self.started.append(self.worker)
                workers = count
            run = self.checkout(f"checkout_web{web}_workers_{count}", webs[web][1], SHOPPERS, self.seconds, "")
            keep = ("orders_per_s", "pay_to_confirmed_p50_ms", "pay_to_confirmed_p99_ms", "errors", "failed")
            # checkout_workers_N with one web process (the name earlier runs used), checkout_webW_workers_N else
            self.figures[f"checkout_web{web}_workers_{count}" if web > 1 else f"checkout_workers_{count}"] = {
                "web_processes": web,
                "worker_processes": count,
                **{k: run[k] for k in keep},
            }
        for web, (process, _) in webs.items():
            if web > 1:
                process.stop()
        self.integrity("integrity_after_scaling")
        for count in (1_000, 10_000, 100_000):
            self.progress.step(f"products_list_{count}")
            self.product_ids = fixtures.seed(count)
            self.placed = 0
            self.figures[f"products_list_{count}"] = load.measure(
                self.shop + "/api/v1/products?category=cat-3&sort=price", runs=self.runs, seconds=self.seconds
            )


def ratio(value: float, base: float) -> float:
    return round(value / base, 2) if base else float("nan")


def ratios(f: dict[str, Any]) -> dict[str, float]:
    bare, sql, one_redis = (f[k]["rps"] for k in ("baseline_bare_json", "baseline_one_sql", "baseline_one_redis"))
    out: dict[str, float] = {}
    for name in ("products_list_category", "product_by_id", "status_poll", "status_poll_304"):
        if name in f:
            out[f"{name}/one_sql"] = ratio(f[name]["rps"], sql)
            out[f"{name}/bare_json"] = ratio(f[name]["rps"], bare)
    for name in ("cart_read", "cart_add"):
        if name in f:
            out[f"{name}/one_redis"] = ratio(f[name]["rps"], one_redis)
    if "checkout" in f and "noop_chain" in f:
        out["checkout_orders/noop_chains"] = ratio(f["checkout"]["orders_per_s"], f["noop_chain"]["chains_per_s"])
    return out


def machine(quick: bool, seconds: float, runs: int) -> dict[str, Any]:
    packages = ("starlette", "uvicorn", "celery", "peewee", "redis", "psycopg2-binary", "orjson", "httpx2")
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: version(p) for p in packages},
        "wrk": load.wrk_version(),
        "settings": {
            "uvicorn_workers": 1,
            "celery_concurrency": 2,
            "wrk": "-t1 -c32",
            "shoppers": SHOPPERS,
            "scaling_runs_web_x_workers": scaling(quick),
            "noop_chains": chains(quick),
        },
        "quick": quick,
        "seconds_per_run": seconds,
        "runs": runs,
    }


if __name__ == "__main__":
    sys.exit(main())
