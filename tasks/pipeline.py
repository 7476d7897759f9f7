"""The checkout pipeline's tasks: each looks up ids, calls one domain function, dispatches its
follow-ups, and declares its retries. Every one is idempotent (see README "Checkout pipeline")."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from models.cart import store as cart
from models.infra.db import db
from models.mail import send as mail
from models.orders import payment_steps, pipeline
from models.orders.checkout import FollowUp
from models.orders.states import announce
from models.payments import GatewayUnavailable
from tasks.app import app
from tasks.dispatch import dispatch

log = logging.getLogger("shop.tasks")
GATEWAY_RETRY: dict[str, Any] = {
    "autoretry_for": (GatewayUnavailable,),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}


def _run(task: Task, step: Any, order_id: int) -> int:
    with db.obj.connection_context():
        follow_ups: list[FollowUp] = step(order_id, task_id=task.request.id)
        remaining = _run_inline(task, follow_ups)
    announce(order_id)
    return dispatch(remaining)


def _run_inline(task: Task, follow_ups: list[FollowUp]) -> list[FollowUp]:
    """Do cheap follow-ups in this task instead of paying a queue round trip for each; one that
    fails here is enqueued as its own task, which retries."""
    remaining: list[FollowUp] = []
    for follow_up in follow_ups:
        try:
            if follow_up.task == "authorize_payment":
                remaining += payment_steps.authorize(*follow_up.args, task_id=task.request.id)
                continue
            if follow_up.task == "clear_cart":
                if follow_up.args and follow_up.args[0]:
                    cart.clear(follow_up.args[0])
                continue
        except Exception:
            log.warning("inline %s failed; enqueueing it", follow_up.task, exc_info=True)
        remaining.append(follow_up)
    return remaining


@app.task(bind=True, name="pipeline.reserve_stock", max_retries=5, autoretry_for=(ConnectionError,), retry_backoff=True)
def reserve_stock(self: Task, order_id: int) -> int:
    return _run(self, pipeline.reserve_stock, order_id)


@app.task(bind=True, name="pipeline.authorize_payment", **GATEWAY_RETRY)
def authorize_payment(self: Task, order_id: int) -> int:
    return _run(self, payment_steps.authorize, order_id)


@app.task(bind=True, name="pipeline.capture_payment", **GATEWAY_RETRY)
def capture_payment(self: Task, order_id: int) -> int:
    return _run(self, payment_steps.capture, order_id)


@app.task(bind=True, name="pipeline.refund_payment", **GATEWAY_RETRY)
def refund_payment(self: Task, order_id: int) -> int:
    return _run(self, payment_steps.refund, order_id)


@app.task(bind=True, name="pipeline.void_payment", **GATEWAY_RETRY)
def void_payment(self: Task, order_id: int) -> int:
    return _run(self, payment_steps.void, order_id)


@app.task(bind=True, name="pipeline.send_order_email", autoretry_for=(mail.MailUnavailable,), retry_backoff=5,
          retry_backoff_max=600, retry_jitter=True, max_retries=12)
def send_order_email(self: Task, order_id: int, kind: str) -> bool:
    with db.obj.connection_context():
        return mail.send_order_email(order_id, kind)


@app.task(bind=True, name="pipeline.low_stock_alert", autoretry_for=(mail.MailUnavailable,), retry_backoff=5,
          max_retries=5)
def low_stock_alert(self: Task, product_id: int) -> bool:
    with db.obj.connection_context():
        return mail.send_low_stock_alert(product_id)


@app.task(name="pipeline.clear_cart")
def clear_cart(session_id: str | None) -> None:
    if session_id:
        cart.clear(session_id)


@app.task(bind=True, name="beat.expire_reservations")
def expire_reservations(self: Task) -> int:
    with db.obj.connection_context():
        return dispatch(pipeline.expire_reservations(task_id=self.request.id))


@app.task(name="beat.redrive_stuck_orders")
def redrive_stuck_orders() -> int:
    with db.obj.connection_context():
        return dispatch(pipeline.redrive())


@app.task(name="beat.sweep_abandoned_carts")
def sweep_abandoned_carts() -> int:
    return pipeline.sweep_abandoned_carts()


TASKS: dict[str, Task] = {
    "reserve_stock": reserve_stock,
    "authorize_payment": authorize_payment,
    "capture_payment": capture_payment,
    "refund_payment": refund_payment,
    "void_payment": void_payment,
    "send_order_email": send_order_email,
    "low_stock_alert": low_stock_alert,
    "clear_cart": clear_cart,
}
