"""Operations: /healthz, /readyz, /metrics (mounted at the root, not under /api/v1)."""

from __future__ import annotations

import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from models.infra import stats
from models.infra.db import db
from models.infra.redis_client import get_redis
from tasks.app import broker_reachable
from web.api import Registry
from web.errors import error_response
from web.metrics import APP, SHOP, ASGIResponse
from web.responses import JSONResponse

api = Registry()
TAGS = ["operations"]


def _check_database() -> bool:
    try:
        with db.obj.connection_context():
            db.obj.execute_sql("SELECT 1")
        return True
    except Exception:
        return False


def _check_redis() -> bool:
    try:
        return bool(get_redis().ping())
    except Exception:
        return False


def readiness() -> dict[str, bool]:
    return {"database": _check_database(), "redis": _check_redis(), "broker": broker_reachable(timeout=1.0)}


@api.route("GET", "/healthz", summary="The process is alive", tags=TAGS)
async def healthz(request: Request) -> dict[str, str]:
    return {"status": "ok"}


@api.route(
    "GET",
    "/readyz",
    summary="Database, Redis and the broker are reachable (503 otherwise)",
    tags=TAGS,
    errors=["service_unavailable"],
)
async def readyz(request: Request) -> Response:
    # Not web.api.run: that borrows a database connection first, which is what we are checking.
    checks = await run_in_threadpool(readiness)
    if all(checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    down = [name for name, ok in checks.items() if not ok]
    return error_response(
        503,
        "service_unavailable",
        f"Not ready: {', '.join(down)} unreachable.",
        {"checks": checks},
        headers={"Retry-After": "5"},
    )


@api.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics (text exposition format; OpenMetrics when asked, gzip when accepted)",
    tags=TAGS,
)
async def metrics(request: Request) -> Response:
    # The checkout's figures are read off the event loop, then prometheus-client's app renders.
    SHOP.stats = await run_in_threadpool(READING.read)
    return ASGIResponse(APP)


STATS_MAX_AGE = 1.0  # seconds; Prometheus scrapes every 15-60 s


class StatsReading:
    """The checkout's figures (aggregates over the order timeline and the email log), read at most
    once per STATS_MAX_AGE per process however often /metrics is asked: a client hammering it
    costs PostgreSQL one reading a second, and scrapes arriving together share one. A threading
    lock, taken in the threadpool, so it belongs to no event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: stats.Stats | None = None
        self._at = 0.0

    def read(self) -> stats.Stats:
        with self._lock:
            if self._stats is None or time.monotonic() - self._at >= STATS_MAX_AGE:
                self._stats = stats.read()
                self._at = time.monotonic()
            return self._stats

    def forget(self) -> None:
        with self._lock:
            self._stats = None


READING = StatsReading()
