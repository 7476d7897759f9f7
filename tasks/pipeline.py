"""The checkout pipeline's tasks: each takes ids, runs one domain step through the dispatcher
(which publishes what the step emitted once it committed), and declares its retries. Every one is
idempotent (see README "Checkout pipeline")."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from peewee import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from models.cart import store as cart
from models.mail import send as mail
from models.orders import payment_steps, payment_sync, pipeline
from models.payments import GatewayUnavailable
from tasks.app import app
from tasks.connection import connected
from tasks.dispatch import perform
from tasks.typed import bound_task, task

log = logging.getLogger("shop.tasks")
# A database or Redis that is briefly unreachable: every step is safe to run again.
INFRA_ERRORS = (OperationalError, InterfaceError, RedisConnectionError)
GATEWAY_RETRY: dict[str, Any] = {
    "autoretry_for": (GatewayUnavailable, *INFRA_ERRORS),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}
# Every retry's countdown stays under the visibility timeout (CELERY_VISIBILITY_TIMEOUT, 300 s):
# a worker holds a message whose countdown runs, unacknowledged, and Redis hands out again one held
# longer than that, so a longer countdown would run the task twice, then more.
MAIL_RETRY: dict[str, Any] = {
    "autoretry_for": (mail.MailUnavailable, *INFRA_ERRORS),
    "retry_backoff": 5,
    "retry_backoff_max": 240,
    "retry_jitter": True,
    "max_retries": 12,
}


def _step(task: Task, step: Callable[..., Any], *args: Any) -> Any:
    with connected():
        return perform(step, *args, task_id=task.request.id)


@bound_task(app, name="pipeline.reserve_stock", max_retries=5, autoretry_for=INFRA_ERRORS, retry_backoff=True)
def reserve_stock(self: Task, order_id: int) -> None:
    _step(self, pipeline.reserve_stock, order_id)


@bound_task(app, name="pipeline.authorize_payment", **GATEWAY_RETRY)
def authorize_payment(self: Task, order_id: int) -> None:
    _step(self, payment_steps.authorize, order_id)


@bound_task(app, name="pipeline.capture_payment", **GATEWAY_RETRY)
def capture_payment(self: Task, order_id: int) -> None:
    _step(self, payment_steps.capture, order_id)


@bound_task(app, name="pipeline.refund_payment", **GATEWAY_RETRY)
def refund_payment(self: Task, order_id: int) -> None:
    _step(self, payment_steps.refund, order_id)


@bound_task(app, name="pipeline.void_payment", **GATEWAY_RETRY)
def void_payment(self: Task, order_id: int) -> None:
    _step(self, payment_steps.void, order_id)


@bound_task(app, name="pipeline.reconcile_payment", **GATEWAY_RETRY)
def reconcile_payment(self: Task, order_id: int) -> None:
    _step(self, payment_sync.reconcile, order_id)


@bound_task(app, name="pipeline.send_order_email", **MAIL_RETRY)
def send_order_email(self: Task, order_id: int, kind: str) -> bool:
    with connected():
        return mail.send_order_email(order_id, kind)


@bound_task(app, name="pipeline.send_cart_reminder", **MAIL_RETRY)
def send_cart_reminder(self: Task, session_id: str, user_id: int) -> bool:
    with connected():
        return mail.send_cart_reminder(session_id, user_id)


@bound_task(app, name="pipeline.low_stock_alert", **{**MAIL_RETRY, "max_retries": 5})
def low_stock_alert(self: Task, product_id: int, entry_id: int | None = None) -> bool:
    with connected():
        return mail.send_low_stock_alert(product_id, entry_id)


@task(
    app,
    name="pipeline.remove_ordered_from_cart",
    autoretry_for=(RedisConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def remove_ordered_from_cart(
    order_id: int, session_id: str, lines: list[list[int]], order_number: str | None = None
) -> bool:
    # A message queued before order_number was sent names the marker by the order's id, as it was then.
    marker = order_number if order_number is not None else order_id
    return cart.remove_ordered(marker, session_id, {product_id: quantity for product_id, quantity in lines})


@bound_task(app, name="beat.expire_reservations")
def expire_reservations(self: Task) -> int:
    with connected():
        return int(perform(pipeline.expire_reservations, task_id=self.request.id))


@task(app, name="beat.redrive_stuck_orders")
def redrive_stuck_orders() -> int:
    with connected():
        return int(perform(pipeline.redrive))


@task(app, name="beat.reconcile_payments")
def reconcile_payments() -> int:
    with connected():
        return int(perform(payment_sync.due_for_reconciliation))


@task(app, name="beat.sweep_abandoned_carts")
def sweep_abandoned_carts() -> int:
    with connected():
        return int(perform(pipeline.sweep_abandoned_carts))
