"""The worker's settings that the pipeline's guarantees and latency rest on (celeryconfig.py).

A pool process replaced after a count of tasks left the pool a process short until Celery's
periodic pool maintenance (every 5 s) forked the replacement: in a one-shopper run with
`worker_max_tasks_per_child = 20`, reservations and captures waited 0.3-4.7 s at each
replacement, and with 1000 one did every ~300 orders. A memory ceiling guards against a leak
without the churn.
"""

from __future__ import annotations

import pytest

from tasks.app import app


def test_pool_processes_are_not_replaced_by_task_count() -> None:
    assert app.conf.worker_max_tasks_per_child is None


def test_a_leaking_pool_process_is_still_replaced() -> None:
    ceiling = app.conf.worker_max_memory_per_child  # KiB
    assert ceiling is not None and 200_000 <= ceiling <= 1_000_000


def test_the_settings_that_protect_orders_are_kept() -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost  # a killed worker's task runs again
    assert conf.worker_prefetch_multiplier == 1  # a queued capture never waits in a busy process's buffer
    assert conf.worker_send_task_events and conf.task_send_sent_event  # Flower sees every task


def test_no_retry_waits_longer_than_the_visibility_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker holds a message whose retry countdown runs, unacknowledged, and Redis hands out
    again a message held past the visibility timeout: a longer countdown would run the task twice,
    then more. Every task's longest countdown stays under the default timeout (the suite's own is
    5 s, to see crashes redelivered quickly)."""
    import tasks.pipeline
    import tasks.shipping  # noqa: F401  (registers the tasks)
    from models.infra.settings import get_settings

    monkeypatch.delenv("CELERY_VISIBILITY_TIMEOUT", raising=False)
    get_settings.cache_clear()
    try:
        timeout = get_settings().celery_visibility_timeout
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    retrying = [task for name, task in app.tasks.items() if getattr(task, "autoretry_for", None)]
    assert {"pipeline.send_order_email", "pipeline.capture_payment"} <= {task.name for task in retrying}
    for task in retrying:  # Celery's autoretry reads these with its own defaults (backoff off, max 600 s)
        backoff = getattr(task, "retry_backoff", False)
        factor = 1 if backoff is True else int(backoff)
        maximum = getattr(task, "retry_backoff_max", 600)
        longest = min(maximum, factor * 2 ** (task.max_retries - 1)) if factor else task.default_retry_delay
        assert longest < timeout, (task.name, longest, timeout)
    assert tasks.pipeline.MAIL_RETRY["retry_backoff_max"] < timeout
