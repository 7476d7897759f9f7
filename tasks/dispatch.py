"""Enqueue follow-up tasks after the transaction that asked for them has committed.

A publish that fails (broker down) is logged and dropped here on purpose: the order's state in
PostgreSQL still says what must happen next, and the `redrive_stuck_orders` beat job asks again.
"""

from __future__ import annotations

import logging

from models.orders.checkout import FollowUp

log = logging.getLogger("shop.dispatch")


def dispatch(follow_ups: list[FollowUp]) -> int:
    """Send each follow-up to its Celery task; returns how many were published."""
    from tasks import pipeline

    published = 0
    for follow_up in follow_ups:
        task = pipeline.TASKS[follow_up.task]
        try:
            task.apply_async(args=follow_up.args)
            published += 1
        except Exception as exc:  # kombu raises many types when the broker is unreachable
            log.warning("could not enqueue %s%s: %s; the re-drive will retry", follow_up.task,
                        list(follow_up.args), exc.__class__.__name__,
                        extra={"task": follow_up.task, "task_args": list(follow_up.args)})
    return published
