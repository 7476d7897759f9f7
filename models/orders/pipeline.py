"""Order steps outside payment: reserve stock, expire, cancel, ship/deliver, and the re-drive.

Each emits its follow-ups (models/events.py); the door that ran it hands them to the dispatcher
after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from models import events
from models.errors import Conflict, NotFound, validation_error
from models.events import (
    AlertLowStock,
    CapturePayment,
    PreparePayment,
    RefundPayment,
    ReserveStock,
    SendCartReminder,
    SendOrderEmail,
    VoidPayment,
)
from models.infra.db import db, tuples
from models.infra.settings import get_settings
from models.mail import send as mail
from models.orders import holds, payment_steps
from models.orders.guests import Customer, GuestAccess, is_customer
from models.orders.states import (
    ADMIN_TARGETS,
    CANCELLED,
    CONFIRMED,
    DELIVERED,
    EXPIRED,
    FAILED,
    PENDING,
    RESERVED,
    SHIPPED,
    PaymentStatus,
    lock,
    record,
    transition,
)
from models.shipping import carriers, tracking
from models.tables import Order, utcnow

log = logging.getLogger("shop.pipeline")
# A reservation whose payment was submitted is not expired until this long after reserved_until:
# the capture in flight decides it.
PAYMENT_GRACE = timedelta(minutes=10)


def reserve_stock(order_id: int, task_id: str | None = None) -> None:
    """pending -> reserved (stock and the discount's use held until reserved_until) or failed
    (out_of_stock, discount_exhausted); else a no-op."""
    with db.atomic():
        # Locked with what its gateway is told about it: an offline preparation needs no read more.
        order = payment_steps.with_payer(order_id, for_update=True)
        if order is None:
            log.warning("reserve_stock: order %s does not exist", order_id)
            return
        if order.status != PENDING:
            if order.status == RESERVED:
                events.emit(PreparePayment(order.id))
            return
        taken = holds.take(order, "task:pipeline.reserve_stock")
        if taken.shortages:
            lines = [
                {"product_id": s.product_id, "sku": s.sku, "requested": s.requested, "available": s.available}
                for s in taken.shortages
            ]
            transition(
                order,
                FAILED,
                "reservation_failed",
                {"reason": "out_of_stock", "lines": lines},
                task_id,
                failure_reason="out_of_stock",
                failure_detail={"lines": lines},
            )
            events.emit(VoidPayment(order.id))
            return
        if taken.refusal is not None:
            refusal = taken.refusal
            detail = {"code": refusal.code, "message": refusal.message, **refusal.details}
            transition(
                order,
                FAILED,
                "reservation_failed",
                {"reason": refusal.code, **detail},
                task_id,
                failure_reason=refusal.code,
                failure_detail=detail,
            )
            events.emit(VoidPayment(order.id))
            return
        until = utcnow() + timedelta(seconds=get_settings().reservation_ttl)
        prepared = payment_steps.prepared_offline(order)
        payment: dict[str, Any] = (
            {
                "payment_next_action": prepared.next_action,
                "payment_transaction_id": prepared.transaction_id or order.payment_transaction_id,
            }
            if prepared
            else {}
        )
        transition(
            order,
            RESERVED,
            "stock_reserved",
            {"reserved_until": until.isoformat()},
            task_id,
            stock_held=True,
            discount_held=taken.discount_held,
            reserved_until=until,
            **payment,
        )
        if prepared:
            record(
                order,
                "payment_prepared",
                {"gateway": order.payment_gateway, "transaction_id": prepared.transaction_id},
                task_id,
            )
        free = order.total == 0
        if free:  # nothing to charge: confirmed now, with no gateway asked
            payment_steps.confirm_free(order, task_id)
    follow_ups = [] if prepared or free else [PreparePayment(order.id)]
    events.emit(*follow_ups, *(AlertLowStock(e.product_id, e.id) for e in taken.crossed))


def expire_reservations(now: datetime | None = None, limit: int = 500, task_id: str | None = None) -> int:
    """reserved past reserved_until -> expired, stock released, the authorisation voided; returns how many."""
    now = now or utcnow()
    # A virtual account waiting for its deposit is expired by reconciliation instead, after asking
    # the gateway whether the money arrived (models/orders/payment_sync.py). The same conditions
    # as _expirable(), which each order is asked again under its lock.
    due = (
        Order.select(Order.id)
        .where(
            Order.status == RESERVED,
            Order.reserved_until < now,
            Order.payment_status != PaymentStatus.AWAITING_DEPOSIT,
            Order.payment_submitted_at.is_null() | (Order.reserved_until < now - PAYMENT_GRACE),
        )
        .order_by(Order.id)
        .limit(limit)
    )
    expired = 0
    for (order_id,) in tuples(due):
        with db.atomic():
            order = lock(order_id)
            if not _expirable(order, now):  # it changed since the selection (a payment, a capture)
                continue
            expire(order, "reservation_expired", task_id)
        expired += 1
    return expired


def _expirable(order: Order, now: datetime) -> bool:
    """The selection of expire_reservations, asked again of the locked order: a payment submitted
    since the selection ran keeps its reservation through PAYMENT_GRACE, as the selection would."""
    return (
        order.status == RESERVED
        and order.reserved_until is not None
        and order.reserved_until < now
        and order.payment_status != PaymentStatus.AWAITING_DEPOSIT
        and (order.payment_submitted_at is None or order.reserved_until < now - PAYMENT_GRACE)
    )


def expire(
    order: Order, event_type: str, task_id: str | None = None, actor: str = "task:beat.expire_reservations"
) -> None:
    """A locked reserved order -> expired: stock and the discount's use released, the payment voided,
    the shopper told."""
    released = holds.give_back(order, actor)
    until = order.reserved_until.isoformat() if order.reserved_until else None
    transition(order, EXPIRED, event_type, {"reserved_until": until}, task_id, **released)
    events.emit(VoidPayment(order.id), SendOrderEmail(order.id, "expired"))


def _actor(user: Customer | None) -> str:
    """Who cancels, as the stock ledger names them."""
    if isinstance(user, GuestAccess):
        return f"guest:order-{user.order_id}"
    return f"user:{user.id}" if user is not None else "system:admin"


def cancel(
    order_id: int,
    user: Customer | None,
    reason: str = "",
    task_id: str | None = None,
    error_code: str = "invalid_state",
    actor: str | None = None,
    repeatable: bool = True,
) -> Order:
    """Cancel before shipping: stock and the discount's use released, a payment refunded or voided.
    user (a member, or a guest holding the order's token) cancels as the customer; None acts as
    admin (actor names who, for the stock ledger). repeatable: an order already cancelled is
    answered as it is (the customer's DELETE); else it is refused with error_code (the admin's
    PATCH, bound to the contract's transitions, of which cancelled -> cancelled is none).

    Raises NotFound order_not_found (someone else's order), Conflict invalid_state (error_code).
    """
    with db.atomic():
        order = lock(order_id)
        if user is not None and not is_customer(order, user):
            raise NotFound("order_not_found", "No such order.", order_id=order_id)
        if order.status == CANCELLED and repeatable:
            return order
        released: dict[str, Any] = {}
        if order.status in (PENDING, RESERVED, CONFIRMED):
            released = holds.give_back(order, actor or _actor(user))
        transition(
            order,
            CANCELLED,
            "order_cancelled",
            {"by": "customer" if user else "admin", "reason": reason},
            task_id,
            error_code=error_code,
            cancelled_at=utcnow(),
            **released,
        )
    undo = RefundPayment(order.id) if order.payment_status == PaymentStatus.PAID else VoidPayment(order.id)
    events.emit(undo, SendOrderEmail(order.id, "cancelled"))
    return order


def admin_update(
    order_id: int, status: str, tracking_number: str | None, carrier: str | None, actor: str | None = None
) -> Order:
    """Administrator moves: confirmed -> shipped (a known carrier and a tracking number required;
    the carrier is then polled for updates), shipped -> delivered, cancel (actor: who, for the
    stock ledger). Any other status is refused, even where the state machine has an arrow to it
    (pending -> reserved, reserved -> confirmed): only the pipeline's steps take those, with the
    stock and the payment they move.

    Raises Conflict invalid_transition, InvalidInput validation_error, NotFound order_not_found.
    """
    if status not in ADMIN_TARGETS:
        order = Order.get_or_none(Order.id == order_id)  # an unknown order is 404 whatever the status
        if order is None:
            raise NotFound("order_not_found", "No such order.", order_id=order_id)
        raise Conflict(
            "invalid_transition",
            f"An administrator cannot make an order {status} (only shipped, delivered or cancelled); "
            f"this one is {order.status}.",
            status=order.status,
            target=status,
        )
    if status == CANCELLED:
        return cancel(order_id, None, "admin", error_code="invalid_transition", actor=actor, repeatable=False)
    if status == SHIPPED:
        carrier, tracking_number = _shipping_fields(carrier, tracking_number)
    with db.atomic():
        order = lock(order_id)
        if status == SHIPPED:
            transition(
                order,
                SHIPPED,
                "order_shipped",
                {"tracking_number": tracking_number, "carrier": carrier},
                tracking_number=tracking_number,
                carrier=carrier,
                shipped_at=utcnow(),
            )
            tracking.start(order)
            events.emit(SendOrderEmail(order.id, "shipped"))
            return order
        transition(order, DELIVERED, "order_delivered", {"by": "admin"}, delivered_at=utcnow())
        tracking.stop(order.id, "delivered")
        events.emit(SendOrderEmail(order.id, "delivered"))
    return order


def _shipping_fields(carrier: str | None, tracking_number: str | None) -> tuple[str, str]:
    """The carrier code and the tracking number as stored; raises InvalidInput validation_error."""
    fields: dict[str, str] = {}
    if carriers.get(carrier) is None:
        fields["carrier"] = f"Shipping requires a known carrier code: one of {', '.join(carriers.CARRIERS)}."
    number = carriers.normalize_tracking_number(tracking_number or "")
    if number is None:
        fields["tracking_number"] = (
            "Shipping requires a tracking number (6-30 letters or digits; spaces and hyphens are ignored)."
        )
    if fields:
        raise validation_error(fields)
    return str(carrier), str(number)


# Each email kind and the orders it is due for: the order is (still) in the state that sent it.
EMAIL_DUE: dict[str, tuple[Any, ...]] = {
    "confirmation": (Order.status.in_([CONFIRMED, SHIPPED, DELIVERED]), Order.paid_at.is_null(False)),
    "shipped": (Order.status.in_([SHIPPED, DELIVERED]),),
    "delivered": (Order.status == DELIVERED,),
    "cancelled": (Order.status == CANCELLED,),
    "refunded": (Order.payment_status == PaymentStatus.REFUNDED,),
    "payment_failed": (Order.status == FAILED, Order.failure_reason == "payment_declined"),
    "expired": (Order.status == EXPIRED,),
    "awaiting_deposit": (
        Order.status == RESERVED,
        Order.payment_status == PaymentStatus.AWAITING_DEPOSIT,
        Order.payment_details.is_null(False),
    ),
}
# An email still unsent this long after its order last changed is no longer worth sending (and the
# first run of a new re-drive does not mail the whole order history).
EMAIL_HORIZON = timedelta(days=2)
CLOSED_UNPAID = (CANCELLED, EXPIRED, FAILED)


def due_follow_ups(*where: Any, now: datetime, stale: datetime | None, limit: int = 200) -> list[events.Command]:
    """What the state of the orders matching where says must run next: reservation, payment
    preparation, capture, void, refund, and every email. stale: only orders unchanged since then
    (the beat job); None: however recently they changed (an operator asking for one order). Orders
    flagged for an operator (payment_flag) get no void or refund."""
    waited = [Order.updated_at < stale] if stale is not None else []
    follow_ups: list[events.Command] = []

    def ids(*conditions: Any) -> list[int]:
        return [
            i
            for (i,) in tuples(
                Order.select(Order.id).where(*waited, *where, *conditions).order_by(Order.id).limit(limit)
            )
        ]

    unflagged = Order.payment_flag.is_null()
    follow_ups += [ReserveStock(i) for i in ids(Order.status == PENDING)]
    follow_ups += [PreparePayment(i) for i in ids(Order.status == RESERVED, Order.payment_next_action.is_null())]
    follow_ups += [
        CapturePayment(i)
        for i in ids(
            Order.status == RESERVED,
            Order.payment_submitted_at.is_null(False),
            Order.payment_status.not_in([PaymentStatus.PAID, PaymentStatus.AWAITING_DEPOSIT]),
        )
    ]
    follow_ups += [
        VoidPayment(i)
        for i in ids(
            Order.status.in_(CLOSED_UNPAID),
            Order.payment_status.in_([PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.AWAITING_DEPOSIT]),
            unflagged,
        )
    ]
    follow_ups += [
        RefundPayment(i)
        for i in ids(Order.status.in_(CLOSED_UNPAID), Order.payment_status == PaymentStatus.PAID, unflagged)
    ]
    for kind, due in EMAIL_DUE.items():
        follow_ups += [
            SendOrderEmail(i, kind)
            for i in ids(*due, Order.updated_at > now - EMAIL_HORIZON, mail.still_due(kind, now))
        ]
    return follow_ups


def redrive(now: datetime | None = None, limit: int = 200) -> int:
    """Find orders whose next task was lost (broker down, message dropped, retries exhausted) and
    ask for it again (due_follow_ups, for orders unchanged for STUCK_AFTER seconds).

    Safe because every task is idempotent: a duplicate finds the state already moved (or the email
    already sent) and does nothing.
    """
    now = now or utcnow()
    follow_ups = due_follow_ups(now=now, stale=now - timedelta(seconds=get_settings().stuck_after), limit=limit)
    if follow_ups:
        log.info(
            "re-driving %d follow-up(s)", len(follow_ups), extra={"follow_ups": [repr(f) for f in follow_ups[:50]]}
        )
    events.emit(*follow_ups)
    return len(follow_ups)


def redrive_order(order_id: int, by: str = "admin") -> list[events.Command]:
    """The re-drive for one order, now (an operator asking): whatever its state says is due, however
    recently it changed; recorded on its timeline. Raises NotFound order_not_found."""
    order = Order.get_or_none(Order.id == order_id)
    if order is None:
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    follow_ups = due_follow_ups(Order.id == order_id, now=utcnow(), stale=None, limit=1)
    record(order, "redriven", {"by": by, "sent": [repr(f) for f in follow_ups]})
    events.emit(*follow_ups)
    return follow_ups


def sweep_abandoned_carts(limit: int = 1000) -> int:
    """Carts idle longer than ABANDONED_CART_AFTER: remind the signed-in customers they belong to
    (once per cart: the sweep then drops them from the activity index, and the reminder's
    Message-ID is the cart's), and log them. Carts hold no stock, so nothing is released; the data
    itself expires with CART_TTL. A cart without a known owner (a guest's) gets no email."""
    from models.cart import store as cart

    sessions = cart.abandoned_sessions(get_settings().abandoned_cart_after, limit)
    if sessions:
        owners = cart.owners(sessions)
        log.info(
            "%d cart(s) abandoned, %d of signed-in customers",
            len(sessions),
            len(owners),
            extra={"sessions": sessions[:20]},
        )
        if owners:
            events.emit(*(SendCartReminder(session, user_id) for session, user_id in owners.items()))
        cart.forget_activity(sessions)
    return len(sessions)
