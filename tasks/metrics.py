"""Each finished task run is counted by its outcome (succeeded, failed, retried) in Redis, where
the web's /metrics reads it (models/infra/stats.py): worker processes serve no metrics of their own."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_failure, task_retry, task_success

from models.infra.stats import count_task
from tasks.typed import receiver

log = logging.getLogger("shop.tasks.metrics")


def _count(task: Any, outcome: str) -> None:
    try:
        count_task(getattr(task, "name", None) or "unknown", outcome)
    except Exception as exc:  # a metric must never fail a task
        log.warning("could not count a %s run of %s: %s", outcome, getattr(task, "name", task), exc.__class__.__name__)


@receiver(task_success)
def _succeeded(sender: Any = None, **_: Any) -> None:
    _count(sender, "succeeded")


@receiver(task_failure)
def _failed(sender: Any = None, **_: Any) -> None:
    _count(sender, "failed")


@receiver(task_retry)
def _retried(sender: Any = None, **_: Any) -> None:
    _count(sender, "retried")
