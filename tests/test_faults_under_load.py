"""Faults under load, with real processes: the shop runs as `make run` runs it (manage.py dev,
supervised, its own embedded PostgreSQL and Redis) while shoppers order and pay over HTTP, and
each fault an operator meets is injected into the real processes: Redis killed, Redis frozen,
PostgreSQL's connections terminated, PostgreSQL restarted, the worker SIGKILLed and SIGTERMed, the
web server SIGTERMed, and Ctrl-C of the whole stack followed by a new start. A SIGTERMed worker
gets 20 s to finish its tasks and exit, then SIGKILL, as `docker stop` does.

Asserted: no 500 and no hang (every request answered within 15 s) at any time; while a dependency
is down the answer is 503 (the web server itself being down refuses connections, nothing else);
the shop recovers by itself within RECOVERY_BOUND seconds of each fault (ready, and a cart write
served); Ctrl-C exits 0. Afterwards every order is final or correctly waiting (reserved, not yet
paid), stock is conserved, each order is charged at most once at the gateway, and no email is
sent twice. One round runs in `make test`; `make soak` runs SOAK_ROUNDS rounds with more shoppers.
The measured recovery times go to var/test/faults-recovery.json (and the README)."""

from __future__ import annotations

import email
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import psutil
import pytest
import redis

from tests.faults import PRODUCTS, ROOT, SOLD_OUT_SOON, Shoppers, Stack, recovered
from tests.support import wait_for

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]
RECOVERY_BOUND = 30.0  # seconds from a fault to a recovered shop
SETTLE_BOUND = 120.0  # seconds for in-flight orders to become final after the last fault
VAR = ROOT / "var" / "test" / "faults"
CONNECTION_ERRORS = {"ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}


def _redis(stack: Stack) -> redis.Redis:
    (port,) = [c.laddr.port for c in stack.child("redis-server").net_connections("inet") if c.status == "LISTEN"]
    return redis.Redis(port=port, decode_responses=True, socket_timeout=5)


def kill_redis(stack: Stack) -> None:
    stack.child("redis-server").kill()


def freeze_redis(stack: Stack) -> None:
    """SIGSTOP for 4 s: connections stay open and nothing answers (requests must not hang)."""
    proc = stack.child("redis-server")
    proc.suspend()
    time.sleep(4)
    proc.resume()


def terminate_pg_connections(stack: Stack) -> None:
    stack.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


def restart_pg(stack: Stack) -> None:
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs PostgreSQL as this user under root
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=stack.var / "postgres", user=user, timeout=60)


def worker_ready(stack: Stack) -> None:
    """Wait until a worker answers a ping: the fault hits a running worker, not one still starting
    (Celery's warm shutdown can hang when SIGTERM lands in the middle of its start-up)."""
    from celery import Celery

    def answers() -> bool:
        app = Celery(broker=f"redis://127.0.0.1:{_redis(stack).connection_pool.connection_kwargs['port']}/0")
        try:
            return bool(app.control.ping(timeout=1.0))
        except (redis.ConnectionError, OSError):  # Redis itself may be coming back
            return False
        finally:
            app.close()

    wait_for(answers, timeout=60, interval=0.2, what="the worker to answer ping")


def kill_worker(stack: Stack) -> None:
    os.killpg(stack.child("celery", "worker").pid, signal.SIGKILL)  # main process and pool, as a lost machine


STOP_GRACE = 20.0  # seconds a SIGTERMed worker gets before SIGKILL, as `docker stop` gives (compose: 60 s)
HUNG_SHUTDOWNS: list[float] = []


def stop_worker(stack: Stack) -> None:
    """SIGTERM (a warm shutdown: running tasks finish), then, like `docker stop`, SIGKILL if the
    worker has not exited after a grace period. Celery's warm shutdown occasionally hangs; each
    time it does is counted in the results (warm_shutdown_hung) rather than failing the run."""
    worker = stack.child("celery", "worker")
    worker.terminate()
    try:
        worker.wait(STOP_GRACE)
    except psutil.TimeoutExpired:
        HUNG_SHUTDOWNS.append(time.monotonic())
        os.killpg(worker.pid, signal.SIGKILL)


def stop_web(stack: Stack) -> None:
    stack.child("uvicorn").terminate()


FAULTS: list[tuple[str, Callable[[Stack], None], bool]] = [  # (name, inject, does the web stop answering)
    ("Redis killed (SIGKILL)", kill_redis, False),
    ("Redis frozen 4 s (SIGSTOP)", freeze_redis, False),
    ("PostgreSQL connections terminated", terminate_pg_connections, False),
    ("PostgreSQL restarted", restart_pg, False),
    ("worker killed (SIGKILL, whole process group)", kill_worker, False),
    ("worker stopped (SIGTERM)", stop_worker, False),
    ("web server stopped (SIGTERM)", stop_web, True),
]


@pytest.fixture
def stack() -> Any:
    running = Stack.fresh(VAR)
    running.start()
    yield running
    running.kill_everything()


def run_rounds(stack: Stack, rounds: int, shoppers_count: int) -> dict[str, Any]:
    products = {name: pid for pid, name in stack.sql("SELECT id, name FROM products WHERE name = ANY(%s)", PRODUCTS)}
    restock(stack, [pid for name, pid in products.items() if name != SOLD_OUT_SOON])
    initial = dict(stack.sql("SELECT id, stock_quantity FROM products"))
    shoppers = Shoppers(stack, shoppers_count, list(products.values()))
    shoppers.start()
    HUNG_SHUTDOWNS.clear()
    recoveries: dict[str, list[float]] = {}
    windows: list[tuple[float, float, bool]] = []  # (start, end, web down) of each fault
    try:
        wait_for(lambda: len(shoppers.orders) >= shoppers_count, timeout=60, what="the first orders")
        for _ in range(rounds):
            for name, inject, web_down in FAULTS:
                worker_ready(stack)  # each fault hits a shop in its steady state
                (last_order,) = stack.sql("SELECT coalesce(max(id), 0) FROM orders")[0]
                fault_began = time.monotonic()
                inject(stack)
                started = time.monotonic()  # the fault is in place (a freeze: over); recovery is timed from here
                # Recovered: ready, a cart write served, and an order placed since the fault has
                # been reserved (or failed for stock) by a worker: the whole pipeline moves again.
                wait_for(
                    lambda last=last_order: recovered(stack) and pipeline_moves(stack, last),
                    timeout=RECOVERY_BOUND,
                    interval=0.1,
                    what=f"recovery after: {name}",
                )
                ended = time.monotonic()
                recoveries.setdefault(name, []).append(round(ended - started, 2))
                windows.append((fault_began, ended, web_down))
            # Ctrl-C, then a new start on the same data, with orders in flight.
            started = time.monotonic()
            assert stack.interrupt() == 0
            stack.start()
            (last_order,) = stack.sql("SELECT coalesce(max(id), 0) FROM orders")[0]
            wait_for(
                lambda last=last_order: recovered(stack) and pipeline_moves(stack, last),
                timeout=RECOVERY_BOUND,
                what="recovery after Ctrl-C and a new start",
            )
            ended = time.monotonic()
            recoveries.setdefault("Ctrl-C, then a new start (whole stack)", []).append(round(ended - started, 2))
            windows.append((started, ended, True))
    finally:
        shoppers.finish()
    check_answers(shoppers, windows)
    copies = check_final_state(stack, initial)
    return {
        "recovery_seconds": recoveries,
        "orders": len(shoppers.orders),
        "email_copies": copies,
        "warm_shutdown_hung": len(HUNG_SHUTDOWNS),
        "answers": dict(Counter(str(o.status) for o in shoppers.outcomes)),
    }


def restock(stack: Stack, product_ids: list[int]) -> None:
    """Stock that no run can sell out, through the admin API (one ledger entry each): recovery is
    proven by a new order moving, and a shop with nothing left to sell places none. The demo's 310
    units of the other three products lasted a round once; a faster pipeline or a slower recovery
    sold them out before the Ctrl-C, and every later cart addition was a 409."""
    password = (stack.var / "admin-password").read_text().strip()
    login = httpx.post(
        f"{stack.url}/api/v1/auth/login", json={"email": "admin@shop.local", "password": password}, timeout=10
    )
    login.raise_for_status()
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    for product_id in product_ids:
        answer = httpx.post(
            f"{stack.url}/api/v1/admin/products/{product_id}/stock",
            json={"reason": "restock", "delta": 100_000, "note": "faults under load: stock for every round"},
            headers=auth,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text


def pipeline_moves(stack: Stack, after_order: int) -> bool:
    try:
        (moved,) = stack.sql("SELECT count(*) FROM orders WHERE id > %s AND status <> 'pending'", after_order)[0]
    except Exception:  # PostgreSQL itself may still be coming back
        return False
    return bool(moved)


def check_answers(shoppers: Shoppers, windows: list[tuple[float, float, bool]]) -> None:
    """No 500, no hang; 503 and refused connections only while something was down."""

    def during(at: float, web: bool) -> bool:
        return any(start <= at <= end + 5 and (down or not web) for start, end, down in windows)

    answered = [o for o in shoppers.outcomes if isinstance(o.status, int)]
    assert len(answered) > 50, "the load did not run"
    assert [o for o in answered if o.status >= 500 and o.status != 503] == []
    assert [o for o in shoppers.outcomes if o.status in {"ReadTimeout", "WriteTimeout", "PoolTimeout"}] == []
    assert [o for o in shoppers.outcomes if not isinstance(o.status, int) and o.status not in CONNECTION_ERRORS] == []
    assert [o for o in answered if o.status == 503 and not during(o.at, web=False)] == []
    assert [o for o in shoppers.outcomes if o.status in CONNECTION_ERRORS and not during(o.at, web=True)] == []


def check_final_state(stack: Stack, initial: dict[int, int]) -> int:
    """Asserts the invariants; returns how many email copies a fault caused (same Message-ID)."""

    def settled() -> bool:
        (unsettled,) = stack.sql(
            "SELECT count(*) FROM orders WHERE status = 'pending' "
            "OR (status = 'reserved' AND payment_submitted_at IS NOT NULL)"
        )[0]
        return unsettled == 0

    wait_for(settled, timeout=SETTLE_BOUND, interval=1, what="every order final or waiting for its payment")
    # Stock conserved: on hand + held by orders = what there was.
    held = dict(
        stack.sql(
            "SELECT i.product_id, sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id "
            "WHERE o.stock_held GROUP BY i.product_id"
        )
    )
    now = dict(stack.sql("SELECT id, stock_quantity FROM products"))
    assert {pid: now[pid] + held.get(pid, 0) for pid in initial} == initial
    # Charged at most once: one gateway charge per paid order, of its total.
    paid = dict(stack.sql("SELECT payment_transaction_id, total FROM orders WHERE payment_status = 'paid'"))
    charges = {txid: int(amount) for txid, amount in _redis(stack).hgetall("dummy:charges").items()}
    assert charges == paid
    (confirmed,) = stack.sql("SELECT count(*) FROM orders WHERE status = 'confirmed'")[0]
    assert confirmed > 0
    # Email: one row per (order, kind); in the mail sink, one Message-ID per subject. Sending is
    # at least once by design (models/mail/send.py): a fault between the SMTP server accepting a
    # message and its row being marked sent (a PostgreSQL restart, a SIGKILL) sends it again, with
    # the same Message-ID, which mail clients use to drop the copy. Copies are counted, not refused.
    assert stack.sql("SELECT order_id, kind FROM email_log GROUP BY order_id, kind HAVING count(*) > 1") == []
    ids: dict[str, set[str]] = {}
    copies = 0
    for path in (stack.var / "mail").glob("*/*"):
        if path.is_file():
            message = email.message_from_bytes(path.read_bytes())
            copies += message["Message-ID"] in ids.get(message["Subject"], set())
            ids.setdefault(message["Subject"], set()).add(message["Message-ID"])
    assert {subject: len(found) for subject, found in ids.items() if len(found) > 1} == {}
    return copies


def _record(result: dict[str, Any], kind: str) -> None:
    out = ROOT / "var" / "test" / "faults-recovery.json"
    data = json.loads(out.read_text()) if out.exists() else {}
    data[kind] = {**result, "bound_seconds": RECOVERY_BOUND, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps(data, indent=2))


def test_one_round_of_every_fault_under_load(stack: Stack) -> None:
    _record(run_rounds(stack, rounds=1, shoppers_count=3), "short")


@pytest.mark.skipif(not os.environ.get("SOAK_ROUNDS"), reason="`make soak` runs several rounds (SOAK_ROUNDS)")
def test_soak_rounds_of_every_fault_under_load(stack: Stack) -> None:
    _record(run_rounds(stack, rounds=int(os.environ["SOAK_ROUNDS"]), shoppers_count=6), "soak")
