"""The one after-commit path: both doors run a domain step through `perform`, which collects the
follow-ups it emits (models/events.py) and, once the step's transaction has committed, hands them
to `handle` in one fixed order:

1. inline commands (cheap, local: preparing a payment right after a reservation) run here; one
   that fails is enqueued as its task instead, which retries;
2. the commands the shopper's checkout waits on (reserve, capture, ...) are published to their
   Celery tasks;
3. one Redis round trip runs the commands that are a Redis script (trimming a paid order's cart),
   closes the change fences the step opened and announces changed orders to long polls, in that
   order, so a woken poll sees the new state (inline commands and scripts included); a script
   that fails is enqueued as its task;
4. last, what nobody waits on (emails, alerts, carrier polls) is published: a confirmed order's
   announcement does not wait for its confirmation email's publish.

A step that raises has its transaction rolled back; the fences it opened are closed all the same.

A publish that fails (broker down) is logged and dropped on purpose: the order's state in
PostgreSQL still says what must happen next, and the `redrive_stuck_orders` beat job asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from models import events
from models.cart import store as cart
from models.infra.db import db
from models.infra.redis_client import Script
from models.orders import payment_steps
from models.orders.states import order_number, settle

if TYPE_CHECKING:
    from tasks.publisher import Publisher

log = logging.getLogger("shop.dispatch")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Route:
    task: str  # the Celery task's name
    inline: Callable[..., Any] | None = None  # run here first; the task is the fallback
    background: bool = False  # published after the announcement: no shopper waits on it
    # Its Redis script, run with the announcement (step 3); the task, published after it, is the fallback.
    script: Callable[..., Script] | None = None


def _remove_ordered(order_id: int, session_id: str, lines: tuple[tuple[int, int], ...], order_number: str) -> Script:
    return cart.remove_ordered_script(order_number, session_id, dict(lines))


ROUTES: dict[type[events.Command], Route] = {
    events.ReserveStock: Route("pipeline.reserve_stock"),
    events.PreparePayment: Route("pipeline.authorize_payment", inline=payment_steps.authorize),
    events.CapturePayment: Route("pipeline.capture_payment"),
    events.VoidPayment: Route("pipeline.void_payment"),
    events.RefundPayment: Route("pipeline.refund_payment"),
    events.ReconcilePayment: Route("pipeline.reconcile_payment"),
    events.SendOrderEmail: Route("pipeline.send_order_email", background=True),
    events.AlertLowStock: Route("pipeline.low_stock_alert", background=True),
    events.SendCartReminder: Route("pipeline.send_cart_reminder", background=True),
    events.PollShipment: Route("tracking.poll_shipment", background=True),
    events.RemoveOrderedFromCart: Route("pipeline.remove_ordered_from_cart", background=True, script=_remove_ordered),
}


def perform(step: Callable[..., T], *args: Any, render: Callable[[T], R] | None = None, **kwargs: Any) -> Any:
    """Run a domain step, then (its transaction committed) render its result, then handle what it
    emitted; returns the rendering (or the step's result). Commit, render, publish, answer: a
    response never shows a state that a follow-up it published has already moved on from."""
    with events.collecting() as emitted:
        try:
            result = step(*args, **kwargs)
        except BaseException:
            _close_fences(emitted)
            raise
    try:
        answer = render(result) if render is not None else result
    except BaseException:
        # Committed all the same: a rendering that fails (PostgreSQL gone right after the commit)
        # must not leave an order waiting for the re-drive to ask for its next step.
        handle(emitted)
        raise
    handle(emitted)
    return answer


def handle(messages: list[events.Message]) -> int:
    """Carry out committed follow-ups in the fixed order above; returns how many tasks were published."""
    queued: list[events.Command] = []
    scripted: list[tuple[events.Command, Script]] = []
    changed: dict[int, str] = {}  # order id -> its last announcement
    fence_keys: list[str] = []
    pending = list(messages)
    while pending:
        message = pending.pop(0)
        if isinstance(message, events.OrderChanged):
            changed[message.order_id] = message.announcement or str(message.order_id)
            continue
        if isinstance(message, events.FenceOpened):
            fence_keys.append(message.key)
            continue
        assert isinstance(message, events.Command), message
        route = ROUTES[type(message)]
        if route.script is not None:
            scripted.append((message, route.script(**message.fields())))
            continue
        if route.inline is None:
            queued.append(message)
            continue
        try:
            with events.collecting() as more:
                try:
                    route.inline(**message.fields())
                except Exception:
                    _close_fences(more)
                    raise
            pending += more
        except Exception:
            log.warning("inline %s failed; enqueueing it", type(message).__name__, exc_info=True)
            queued.append(message)
    published = sum(_publish(command) for command in queued if not ROUTES[type(command)].background)
    announcements = list(changed.values())
    if db.obj.in_transaction():  # run inside a caller's transaction: its commit is not ours to see,
        fence_keys = []  # so its fences stay open and its rows are not announced, only their ids
        announcements = [str(order_id) for order_id in changed]
    replies = settle(fence_keys, announcements, [script for _, script in scripted])
    for (command, _), reply in zip(scripted, replies or [None] * len(scripted), strict=True):
        if replies is None or isinstance(reply, Exception):
            log.warning("%s failed (%r); enqueueing it", type(command).__name__, reply)
            queued.append(command)  # a background route: published below
    return published + sum(_publish(command) for command in queued if ROUTES[type(command)].background)


def _close_fences(emitted: list[events.Message]) -> None:
    """Close the fences a step that raised had opened, once its transaction is over (inside a
    caller's transaction they stay open until they expire: that transaction may yet commit)."""
    keys = [m.key for m in emitted if isinstance(m, events.FenceOpened)]
    if keys and not db.obj.in_transaction():
        settle(keys, [])


def _shadow(name: str, command: events.Command) -> str | None:
    """The name Flower and the worker's logs show: the task's, then the order number."""
    order_id = getattr(command, "order_id", None)
    if order_id is None:
        return None
    try:
        return f"{name} {order_number(order_id)}"
    except Exception:  # a label is not worth failing a publish over
        return None


_publisher: Publisher | None = None


def publisher() -> Publisher:
    """This process's publisher for the shop's Celery app (tasks/publisher.py), made on first use."""
    global _publisher
    if _publisher is None:
        from tasks.app import app
        from tasks.publisher import Publisher

        _publisher = Publisher(app)
    return _publisher


def _publish(command: events.Command) -> bool:
    name = ROUTES[type(command)].task
    try:
        # Celery's message in one round trip, its result never stored (tasks/publisher.py).
        publisher().send(name, command.fields(), shadow=_shadow(name, command))
        return True
    except Exception as exc:  # kombu raises many types when the broker is unreachable
        log.warning(
            "could not enqueue %s%s: %s; the re-drive will retry",
            name,
            command.fields(),
            exc.__class__.__name__,
            extra={"task": name, "task_kwargs": command.fields()},
        )
        return False
