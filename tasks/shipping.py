"""Shipping updates' tasks: the beat job that claims due shipments, and one poll per shipment."""

from __future__ import annotations

from celery import Task

from models.shipping import tracking
from tasks.app import app
from tasks.connection import connected
from tasks.dispatch import perform
from tasks.pipeline import INFRA_ERRORS
from tasks.typed import bound_task, task


@bound_task(app, name="tracking.poll_shipment", autoretry_for=INFRA_ERRORS, retry_backoff=True, max_retries=5)
def poll_shipment(self: Task, order_id: int) -> str:
    # A carrier error is not retried here: the shipment's next poll time is the retry, backed off.
    with connected():
        return str(perform(tracking.poll, order_id, task_id=self.request.id).outcome)


@task(app, name="beat.poll_shipments")
def poll_shipments() -> int:
    with connected():
        return len(perform(tracking.claim_due))
