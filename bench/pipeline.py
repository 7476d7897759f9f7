"""The checkout pipeline under load: shoppers that add to cart, check out, poll /status until
reserved, pay with tok_ok and poll until confirmed; and the no-op Celery chain baseline."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from typing import Any

from bench.cpu import Meter
from bench.http1 import Client

ADDRESS = {
    "recipient_name": "Bench",
    "phone": "010-0000-0000",
    "postal_code": "04524",
    "address_line1": "1 Sejong-daero",
    "city": "Seoul",
}
TASKS_PER_ORDER = 3  # reserve_stock, capture_payment, send_order_email (authorize and cart clearing run inline)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _poll(
    http: Client,
    order_id: int,
    headers: dict[str, str],
    wanted: set[str],
    stats: dict[str, int],
    interval: float,
    etag: str | None,
) -> str:
    """Poll until the order's status is one of `wanted` (or final), starting from the ETag of the
    202 that placed or paid it, as the API's documentation advises a storefront to."""
    while True:
        # interval 0: long polling (?wait=10 with If-None-Match), as a storefront should poll.
        wait = "?wait=10" if interval == 0 and etag else ""
        response = await http.get(
            f"/api/v1/orders/{order_id}/status{wait}",
            headers={**headers, **({"If-None-Match": etag} if etag else {})},
        )
        stats["polls"] += 1
        if response.status_code == 200:
            etag = response.headers.get("etag")
            status = response.json()["status"]
            if status in wanted or status in {"failed", "expired", "cancelled"}:
                return str(status)
        elif response.status_code != 304:
            stats["errors"] += 1
        if interval:
            await asyncio.sleep(interval)


async def _shopper(
    base: str, token: str, product_ids: list[int], deadline: float, out: dict[str, Any], interval: float
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with Client(base, timeout=30) as http:
        while time.monotonic() < deadline:
            session = "bench-" + uuid.uuid4().hex
            added = await http.post(
                "/api/v1/cart/items",
                json={"product_id": random.choice(product_ids), "quantity": 1},
                headers={"X-Session-ID": session},
            )
            placed = await http.post(
                "/api/v1/orders",
                json={"shipping_address": ADDRESS, "shipping_method": "standard", "payment_method": "dummy"},
                headers={**headers, "X-Session-ID": session, "Idempotency-Key": session},
            )
            if added.status_code != 200 or placed.status_code != 202:
                out["stats"]["errors"] += 1
                continue
            out["stats"]["placed"] += 1
            started = time.monotonic()
            order_id = placed.json()["id"]
            reserved = await _poll(
                http, order_id, headers, {"reserved"}, out["stats"], interval, placed.headers["etag"]
            )
            if reserved != "reserved":
                out["stats"]["failed"] += 1
                continue
            paid = time.monotonic()
            pay = await http.post(f"/api/v1/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
            if pay.status_code != 202:
                out["stats"]["errors"] += 1
                continue
            if (
                await _poll(http, order_id, headers, {"confirmed"}, out["stats"], interval, pay.headers["etag"])
                == "confirmed"
            ):
                now = time.monotonic()
                out["pay_to_confirmed"].append(now - paid)
                out["order_to_confirmed"].append(now - started)
                out["confirmed_at"].append(now)


def checkout_load(
    base: str, tokens: list[str], product_ids: list[int], seconds: float, poll_interval: float = 0.0
) -> dict[str, Any]:
    """Run one shopper per token for `seconds`, each polling /status every poll_interval seconds
    with If-None-Match (0: long polling with ?wait); orders/s counts orders confirmed end to end."""
    out: dict[str, Any] = {
        "pay_to_confirmed": [],
        "order_to_confirmed": [],
        "confirmed_at": [],
        "stats": {"placed": 0, "polls": 0, "errors": 0, "failed": 0},
    }

    async def main() -> float:
        begin = time.monotonic()
        await asyncio.gather(*(_shopper(base, t, product_ids, begin + seconds, out, poll_interval) for t in tokens))
        return time.monotonic() - begin

    elapsed = asyncio.run(main())
    pay = [s * 1000 for s in out["pay_to_confirmed"]]
    return {
        "orders_per_s": len(pay) / elapsed,
        "confirmed": len(pay),
        "seconds": round(elapsed, 2),
        "shoppers": len(tokens),
        "poll_interval_ms": poll_interval * 1000,
        "pay_to_confirmed_p50_ms": percentile(pay, 0.5),
        "pay_to_confirmed_p99_ms": percentile(pay, 0.99),
        "order_to_confirmed_p50_ms": percentile([s * 1000 for s in out["order_to_confirmed"]], 0.5),
        **out["stats"],
    }


def settle(timeout: float = 30) -> None:
    """Wait until the broker is idle: no message queued and none running (late acks keep a running
    task in kombu's `unacked` hash), so that a measurement does not inherit the last one's tail
    (its order emails, say)."""
    from models.infra.redis_client import get_redis
    from tasks.app import app

    redis = get_redis()
    # kombu's Redis transport keeps one list per queue and priority step: "name", "name\x06\x163", …
    steps = ("", "\x06\x163", "\x06\x166", "\x06\x169")
    keys = [queue.name + step for queue in app.conf.task_queues for step in steps]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not redis.hlen("unacked") and not any(redis.llen(key) for key in keys):
            return
        time.sleep(0.1)
    print(f"bench: the broker was still busy after {timeout:.0f} s; measuring anyway", flush=True)


def noop_chains(count: int, in_flight: int, meter: Meter | None = None) -> dict[str, Any]:
    """Chains of TASKS_PER_ORDER no-op tasks through the same broker and workers: chains/s at
    `in_flight` concurrent chains, and one chain's latency when the queue is idle. `meter`, when
    given, reads the CPU of the throughput part (started and stopped around it)."""
    from celery import chain

    from bench.celery_noop import done, noop
    from models.infra.redis_client import get_redis

    redis = get_redis()

    def send(key: str, index: int) -> None:
        links = [noop.si(index) for _ in range(TASKS_PER_ORDER - 1)] + [done.si(key, time.time())]
        chain(*links).apply_async()

    idle_key = f"bench:idle:{uuid.uuid4().hex}"
    for index in range(50):
        send(idle_key, index)
        while redis.llen(idle_key) <= index:
            time.sleep(0.0005)
    idle = [float(v) * 1000 for v in redis.lrange(idle_key, 0, -1)]

    key = f"bench:chains:{uuid.uuid4().hex}"
    if meter:
        meter.start()
    begin, sent = time.monotonic(), 0
    while sent < count:
        while sent < count and sent - redis.llen(key) < in_flight:
            send(key, sent)
            sent += 1
        time.sleep(0.001)
    while redis.llen(key) < count:
        time.sleep(0.005)
    elapsed = time.monotonic() - begin
    used = meter.stop() if meter else None
    return {
        "chains_per_s": count / elapsed,
        "chains": count,
        "seconds": round(elapsed, 2),
        **({"cpu_used": used} if used is not None else {}),
        "chain_idle_p50_ms": statistics.median(idle),
        "chain_idle_p99_ms": percentile(idle, 0.99),
        "tasks_per_chain": TASKS_PER_ORDER,
    }
