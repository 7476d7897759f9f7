"""No-op tasks on the shop's own Celery app and broker: the baseline for the pipeline figures."""

from __future__ import annotations

import time

from models.infra.redis_client import get_redis
from tasks.app import app


@app.task(name="bench.noop")
def noop(index: int) -> None:
    return None


@app.task(name="bench.done")
def done(key: str, started: float) -> None:
    get_redis().rpush(key, time.time() - started)
