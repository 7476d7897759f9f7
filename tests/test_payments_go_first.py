"""Money first: with a backlog of reservations and emails queued, a worker takes payment tasks
before anything else (celeryconfig.task_queues, queue_order_strategy "priority")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tasks.app import app
from tests.support import WorkerProcess, wait_for

ROOT = Path(__file__).resolve().parent.parent
MISSING = 2_000_000_000  # no such order: each task finds nothing to do and succeeds at once
SUCCEEDED = re.compile(r"Task (pipeline\.\w+)\[[0-9a-f-]+\] succeeded")


def test_a_worker_takes_payments_before_reservations_and_email(_worker_process: WorkerProcess, tmp_path: Path) -> None:
    _worker_process.stop()  # nothing may consume while the backlog is built
    for index in range(6):
        app.send_task("pipeline.reserve_stock", args=[MISSING + index])
        app.send_task("pipeline.send_order_email", args=[MISSING + index, "confirmation"])
    for index in range(2):  # sent last, so only their queue can put them first
        app.send_task("pipeline.capture_payment", args=[MISSING + index])
    worker = WorkerProcess(ROOT, tmp_path / "worker.log", concurrency=1)  # one task at a time: a clear order
    worker.start(env={"LOG_LEVEL": "INFO"})  # INFO: celery logs each task that succeeded
    try:

        def finished() -> list[Any]:
            names = SUCCEEDED.findall(worker.log_path.read_text())
            return names if len(names) == 14 else []

        order = wait_for(finished, timeout=30, what="the backlog to be worked off")
    finally:
        worker.stop()
    assert order[:2] == ["pipeline.capture_payment"] * 2
    assert order[2:8] == ["pipeline.reserve_stock"] * 6
    assert order[8:] == ["pipeline.send_order_email"] * 6
