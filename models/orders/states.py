"""The order state machine: which transitions exist, and one function that performs them."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from models import events
from models.errors import Conflict, NotFound
from models.infra import fences
from models.infra.db import insert, save_changed, select_rows
from models.infra.redis_client import Script
from models.tables import Order, OrderEvent, utcnow

log = logging.getLogger("shop.orders")

PENDING, RESERVED, CONFIRMED, SHIPPED, DELIVERED = "pending", "reserved", "confirmed", "shipped", "delivered"
FAILED, EXPIRED, CANCELLED = "failed", "expired", "cancelled"
STATUSES = (PENDING, RESERVED, CONFIRMED, SHIPPED, DELIVERED, FAILED, EXPIRED, CANCELLED)
FINAL = frozenset({DELIVERED, FAILED, EXPIRED, CANCELLED})


class PaymentStatus(StrEnum):
    """An order's payment_status (CONTRACT.md); compares equal to its string, as stored."""

    PENDING = "pending"
    AUTHORIZED = "authorized"  # held at the gateway (a Stripe intent requires_capture), not captured yet
    AWAITING_DEPOSIT = "awaiting_deposit"  # a virtual account waits for the shopper's transfer
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"
    VOIDED = "voided"


# from -> allowed targets (CONTRACT.md "Order status").
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RESERVED, FAILED, CANCELLED}),
    RESERVED: frozenset({CONFIRMED, FAILED, EXPIRED, CANCELLED}),
    CONFIRMED: frozenset({SHIPPED, CANCELLED}),
    SHIPPED: frozenset({DELIVERED}),
    DELIVERED: frozenset(),
    FAILED: frozenset(),
    EXPIRED: frozenset(),
    CANCELLED: frozenset(),
}
# What an administrator may set through PATCH /orders/{id}.
ADMIN_TARGETS = frozenset({SHIPPED, DELIVERED, CANCELLED})


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def lock(order_id: int) -> Order:
    """Load the order FOR UPDATE inside the caller's transaction; raises NotFound order_not_found."""
    found = select_rows(Order, "states:lock", lambda: Order.select().where(Order.id == 0).for_update(), order_id)
    if not found:
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    order = found[0]
    remember_number(order)
    return order


# An order's number never changes, so each process keeps the numbers of the orders it has locked
# or placed: the dispatcher labels each task with its order's number (Flower shows it) without a
# query per publish.
_numbers: OrderedDict[int, str] = OrderedDict()
NUMBERS_KEPT = 8192


def remember_number(order: Order) -> None:
    """Keep the order's number for order_number()."""
    _numbers[order.id] = order.order_number
    if len(_numbers) > NUMBERS_KEPT:
        _numbers.popitem(last=False)


def order_number(order_id: int) -> str:
    """The order's number: a kept one, else one query. Raises LookupError (an order not committed
    yet, or gone: not kept)."""
    number = _numbers.get(order_id)
    if number is None:
        number = Order.select(Order.order_number).where(Order.id == order_id).scalar()
        if number is None:
            raise LookupError(order_id)
        _numbers[order_id] = number = str(number)
    return number


def record(
    order: Order,
    event_type: str,
    detail: dict[str, Any] | None = None,
    task_id: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> OrderEvent:
    """Append an event to the order's timeline and log it (one line per event). The insert goes
    with the transaction's next statement or its commit (`ShopDatabase.write_later`): the event's
    id stays unset."""
    event = OrderEvent(
        order=order.id,
        type=event_type,
        from_status=from_status,
        to_status=to_status,
        detail=detail or {},
        task_id=task_id,
    )
    insert(event, later=True)
    log.info(
        "order %s %s",
        order.order_number,
        event_type,
        extra={
            "order_id": order.id,
            "order_number": order.order_number,
            "event": event_type,
            "from_status": from_status,
            "to_status": to_status,
            "task_id": task_id,
            "detail": detail or {},
        },
    )
    return event


def fence_key(order_id: int) -> str:
    """The order's change fence: what the web's status copies are checked against."""
    return f"fence:order:{order_id}"


def touch(order: Order, **changes: Any) -> None:
    """Save changes to a locked order, bumping version (the ETag) and updated_at, and open its
    change fence before the transaction commits; emits FenceOpened and OrderChanged."""
    for name, value in changes.items():
        setattr(order, name, value)
    order.version += 1
    order.updated_at = utcnow()
    # Only what changed, by a statement built once, sent with the transaction's next statement or
    # its commit: the row is locked, so the update cannot miss it.
    save_changed(order, later=True)
    key = fence_key(order.id)
    counter = fences.open(key)
    events.emit(events.FenceOpened(key), events.OrderChanged(order.id, announcement(order, counter)))


def announcement(order: Order, counter: str) -> str:
    """What a step announces about an order it wrote: "<id> <fence counter> <status row as JSON>".
    The dispatcher publishes it only after the transaction committed and the fence closed; a
    web process keeps the row as its status copy under that counter (web/orders/status_reader.py),
    which the fence check then serves only while no later write has moved the fence."""
    row = {
        "order_number": order.order_number,
        "status": order.status,
        "payment_status": order.payment_status,
        "version": order.version,
        "updated_at": order.updated_at.isoformat(),
        "user_id": order.user_id,
    }
    return f"{order.id} {counter} {json.dumps(row, separators=(',', ':'))}"


def transition(
    order: Order,
    target: str,
    event_type: str,
    detail: dict[str, Any] | None = None,
    task_id: str | None = None,
    error_code: str = "invalid_transition",
    **changes: Any,
) -> None:
    """Move a locked order to target, with its event; raises Conflict for a transition that doesn't exist."""
    if not can_transition(order.status, target):
        raise Conflict(
            error_code, f"An order that is {order.status} cannot become {target}.", status=order.status, target=target
        )
    previous = order.status
    touch(order, status=target, **changes)
    record(order, event_type, detail, task_id, previous, target)


STATUS_CHANNEL = "order-status"


def announce(order_id: int) -> None:
    """Tell long-polling /status requests that this order may have changed.

    Best effort: a lost announcement only delays a waiting client until its next re-check.
    """
    settle([], [str(order_id)])


def settle(fence_keys: list[str], announcements: list[str], scripts: Sequence[Script] = ()) -> list[Any] | None:
    """After a step's transaction has ended: run `scripts` (what the step's follow-ups write to
    Redis: trimming a cart), close the fences it opened, then announce its changed orders to long
    polls (one Redis round trip; the dispatcher calls this last). An announcement is an order id
    alone (web processes drop their copy of it) or `announcement()`'s text. Returns the scripts'
    replies (an error in place of a failed one's), or None when Redis could not be reached.

    Best effort: a fence left open sends status reads to PostgreSQL until it expires, and a lost
    announcement only delays a waiting client until its next re-check.
    """
    if not fence_keys and not announcements and not scripts:
        return []
    try:
        return fences.close(fence_keys, then=[(STATUS_CHANNEL, text) for text in announcements], first=scripts)
    except Exception:  # Redis down: waiting clients fall back to re-reading
        log.warning("could not settle the changes of orders %s", [text.split(" ", 1)[0] for text in announcements])
        return None
