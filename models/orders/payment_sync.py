"""Keeping orders in line with what the gateways say: webhooks and the reconciliation beat job.

A webhook is stored once per (gateway, event id) and only ever taken as a hint: the order step
asks the gateway for the payment's state (`reconcile`) and moves the order forward only, so an
event that comes late, twice, out of order or before `pay` can never move an order backwards.
Reconciliation does the same for orders whose payment outcome is unknown or stuck, fixes what it
can, and flags the rest for a person (`payment_flag`, listed at GET /admin/payments/flagged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import fn

from models import events
from models.errors import InvalidInput
from models.events import CapturePayment, ReconcilePayment, RefundPayment, SendOrderEmail, VoidPayment
from models.infra.db import db, tuples
from models.infra.settings import get_settings
from models.orders import pipeline
from models.orders.payment_steps import (
    CLOSED_UNPAID,
    UNCAPTURED,
    _declined,
    capture,
    confirm_paid,
    flag,
    opened_fields,
    payment_order,
    reference,
)
from models.orders.states import CONFIRMED, DELIVERED, RESERVED, SHIPPED, PaymentStatus, lock, record, touch
from models.payments import GatewayRejected, PaymentDeclined, PaymentResult, get_gateway
from models.payments.webhooks import Hint, secret_matches
from models.tables import Order, WebhookEvent, utcnow

log = logging.getLogger("shop.payments.sync")
# After this many reconciliation periods without an outcome, a person is asked to look.
FLAG_AFTER_PERIODS = 4
# An order voided after its payment was handed in is asked about this many more periods: a gateway
# that finished the payment after the void looked (a capture whose answer was lost) is found then,
# as at any time by its webhook.
VOIDED_WATCH_PERIODS = 4
RECONCILER = "task:pipeline.reconcile_payment"  # who released stock, for the stock ledger


def receive_webhook(hint: Hint) -> bool:
    """Store a gateway event once and act on it; False for a delivery already handled.

    Raises InvalidInput invalid_signature for a deposit callback whose secret is not the payment's.
    """
    found = Order.get_or_none(Order.order_number == hint.order_number) if hint.order_number else None
    if found is None and hint.reference:  # e.g. a charge whose metadata did not come along
        found = Order.get_or_none(Order.payment_transaction_id == hint.reference)
    with db.atomic():
        order = lock(found.id) if found is not None and found.payment_gateway == hint.gateway else None
        if hint.deposit_secret is not None:
            digest = ((order.payment_details or {}) if order else {}).get("secret_sha256")
            if not secret_matches(hint.deposit_secret, digest):
                raise InvalidInput("invalid_signature", "The deposit callback's secret is not this payment's.")
        elif hint.gateway == "toss" and (order is None or hint.reference is None or hint.reference != reference(order)):
            # Unsigned, and not about the payment we know for an order of ours: anyone may post such
            # an event, with a new id each time. Storing or recording it would let them grow the
            # table and write into any order's timeline; acting on it could only ask Toss about a
            # payment nobody handed us. Answered 200 (Toss stops resending) and logged, nothing kept.
            log.info(
                "toss webhook %s ignored: not the payment of an order of ours (%s)", hint.event_id, hint.order_number
            )
            return True
        stored = (
            WebhookEvent.insert(
                gateway=hint.gateway,
                event_id=hint.event_id,
                event_type=hint.event_type,
                order=order.id if order else None,
            )
            .on_conflict_ignore()
            .execute()
        )
        if not stored:
            return False
        if order is None:
            log.info("%s webhook %s for no order of ours (%s)", hint.gateway, hint.event_id, hint.order_number)
            return True
        record(
            order,
            "payment_webhook",
            {"gateway": hint.gateway, "event": hint.event_type, "event_id": hint.event_id, **(hint.detail or {})},
        )
        if hint.deposit_secret is None and hint.reference != reference(order):
            # Not the payment we know for this order (another intent; a payment key nobody handed
            # us): nothing to act on, and an unsigned Toss event cannot make us call Toss for it.
            return True
        if (
            order.status == RESERVED
            and hint.says_paid
            and order.payment_submitted_at is None
            and hint.gateway == "stripe"
        ):
            # Paid before the storefront called /pay: take that as the pay (the re-drive then
            # captures even if the follow-up below is lost).
            touch(order, payment_proof={"payment_intent_id": hint.reference}, payment_submitted_at=utcnow())
            record(order, "payment_submitted", {"gateway": "stripe", "by": hint.event_type})
    events.emit(ReconcilePayment(order.id))
    return True


def reconcile(order_id: int, task_id: str | None = None) -> None:
    """Ask the gateway about the order's payment and move the order forward to match; flags what
    only a person can settle. Raises GatewayUnavailable (the task retries)."""
    order = Order.get_or_none(Order.id == order_id)
    if order is None:
        return
    _checked(order_id)
    if (
        order.status == RESERVED
        and order.payment_proof is not None
        and order.payment_status != PaymentStatus.AWAITING_DEPOSIT
    ):
        capture(order_id, task_id)  # captures, or learns it was captured, or that it is not paid yet
        return
    transaction_id = reference(order)
    if transaction_id is None and order.payment_submitted_at is None:
        return  # nothing at the gateway to ask about (with a payment handed in, it is asked by order number)
    try:
        truth = get_gateway(order.payment_gateway).status(payment_order(order), transaction_id)
    except (PaymentDeclined, GatewayRejected) as error:
        flag(order_id, f"the gateway's payment does not match the order: {error}", task_id)
        return
    with db.atomic():
        order = lock(order_id)
        if order.status == RESERVED:
            _reserved(order, truth, task_id)
        elif order.status in CLOSED_UNPAID:
            _closed(order, truth, task_id)
        elif order.status in (CONFIRMED, SHIPPED, DELIVERED) and truth.status != "captured":
            flag(order.id, f"the gateway says {truth.status} while the order is {order.status}", task_id)


def _reserved(order: Order, truth: PaymentResult, task_id: str | None) -> None:
    if truth.status == "captured":
        confirm_paid(order, truth, task_id)
    elif truth.status == "authorized":
        changes = (
            {}
            if order.payment_submitted_at
            else {"payment_proof": {"payment_intent_id": truth.transaction_id}, "payment_submitted_at": utcnow()}
        )
        if order.payment_status == PaymentStatus.PENDING or changes:
            touch(order, payment_status=PaymentStatus.AUTHORIZED, **changes)
            record(order, "payment_authorized", {"transaction_id": truth.transaction_id}, task_id)
        events.emit(CapturePayment(order.id))
    elif order.payment_status == PaymentStatus.AWAITING_DEPOSIT:
        overdue = order.reserved_until is not None and order.reserved_until < utcnow()
        if truth.status == "expired" or (overdue and truth.status == "awaiting_deposit"):
            pipeline.expire(order, "deposit_overdue", task_id, RECONCILER)  # releases the stock, closes the account
        elif truth.status in ("voided", "failed"):
            pipeline.expire(order, "deposit_cancelled", task_id, RECONCILER)
    elif truth.status in ("voided", "failed") and order.payment_submitted_at is not None:
        declined = PaymentDeclined(
            message="The payment was cancelled at the gateway.",
            decline_code=truth.raw.get("intent_status") or truth.status,
        )
        _declined(order.id, declined, task_id, RECONCILER)  # a savepoint inside our transaction, on the row we hold


def _closed(order: Order, truth: PaymentResult, task_id: str | None) -> None:
    if order.payment_status == PaymentStatus.PAID:
        if truth.status == "refunded":  # the refund happened; its answer was lost
            touch(order, payment_status=PaymentStatus.REFUNDED, payment_flag=None)
            record(
                order,
                "payment_refunded",
                {"transaction_id": truth.transaction_id, "amount": truth.amount, "seen_by": "reconciliation"},
                task_id,
            )
            events.emit(SendOrderEmail(order.id, "refunded"))
        elif truth.status == "captured":
            events.emit(RefundPayment(order.id))
    elif order.payment_status == PaymentStatus.VOIDED:
        # Recorded voided, yet the gateway finished a payment afterwards (a confirm still in flight,
        # a capture whose answer was lost): refund it, or close what is still open.
        if truth.status == "captured":
            confirm_paid(order, truth, task_id)  # recorded paid after the close; refunded next
        elif truth.status in ("authorized", "awaiting_deposit"):
            touch(order, payment_status=PaymentStatus(truth.status), **opened_fields(truth))
            record(order, "payment_open_after_void", {"transaction_id": truth.transaction_id}, task_id)
            events.emit(VoidPayment(order.id))
    elif order.payment_status in UNCAPTURED:
        if truth.status == "captured":
            confirm_paid(order, truth, task_id)  # paid after the order closed: refunded next
        elif truth.status in ("authorized", "awaiting_deposit", "pending"):
            events.emit(VoidPayment(order.id))
        else:
            touch(order, payment_status=PaymentStatus.VOIDED)
            record(
                order, "payment_voided", {"transaction_id": truth.transaction_id, "seen_by": "reconciliation"}, task_id
            )


def _checked(order_id: int) -> None:
    # Not a change of the order (no version bump): only when reconciliation last asked.
    Order.update(payment_checked_at=utcnow()).where(Order.id == order_id).execute()


def due_for_reconciliation(now: datetime | None = None, limit: int = 100) -> int:
    """The beat job: ask about every order whose payment outcome is unknown or stuck, and flag those
    stuck for FLAG_AFTER_PERIODS periods. Returns how many were asked about."""
    now = now or utcnow()
    period = timedelta(seconds=get_settings().payment_reconcile_after)
    old = now - period
    not_checked = Order.payment_checked_at.is_null() | (Order.payment_checked_at < old)
    with_payment = Order.payment_transaction_id.is_null(False) | Order.payment_submitted_at.is_null(False)
    due = (
        Order.select(Order.id)
        .where(
            not_checked,
            (
                # outcome unknown, authorised but not captured, or captured at the gateway but not confirmed
                (
                    (Order.status == RESERVED)
                    & Order.payment_status.in_([PaymentStatus.PENDING, PaymentStatus.AUTHORIZED])
                    & with_payment
                    & (Order.updated_at < old)
                )
                # a virtual account: did the deposit come, is it overdue?
                | ((Order.status == RESERVED) & (Order.payment_status == PaymentStatus.AWAITING_DEPOSIT))
                # a refund or a void asked for but not seen
                | (
                    Order.status.in_(CLOSED_UNPAID)
                    & Order.payment_status.in_([PaymentStatus.PAID, *UNCAPTURED])
                    & with_payment
                    & (Order.updated_at < old)
                )
                # voided after the shopper paid: for a while, did a capture finish at the gateway anyway?
                | (
                    Order.status.in_(CLOSED_UNPAID)
                    & (Order.payment_status == PaymentStatus.VOIDED)
                    & Order.payment_submitted_at.is_null(False)
                    & (Order.updated_at < old)
                    & (Order.updated_at >= now - VOIDED_WATCH_PERIODS * period)
                )
            ),
        )
        .order_by(Order.updated_at)
        .limit(limit)
    )
    ids = [i for (i,) in tuples(due)]
    _flag_stuck(now - FLAG_AFTER_PERIODS * period, int(FLAG_AFTER_PERIODS * period.total_seconds() // 60))
    events.emit(*(ReconcilePayment(i) for i in ids))
    return len(ids)


def _flag_stuck(before: datetime, minutes: int) -> None:
    stuck = tuples(
        Order.select(Order.id, Order.status, Order.payment_status)
        .where(
            Order.payment_flag.is_null(),
            Order.updated_at < before,
            (
                (Order.status == RESERVED)
                & Order.payment_submitted_at.is_null(False)
                & Order.payment_status.in_([PaymentStatus.PENDING, PaymentStatus.AUTHORIZED])
            )
            | (
                (Order.status == RESERVED)
                & (Order.payment_status == PaymentStatus.AWAITING_DEPOSIT)
                & (Order.reserved_until < before)
            )
            | (Order.status.in_(CLOSED_UNPAID) & (Order.payment_status == PaymentStatus.PAID)),
        )
        .limit(100)
    )
    reasons = {
        PaymentStatus.PENDING: "no payment outcome yet",
        PaymentStatus.AUTHORIZED: "no payment outcome yet",
        PaymentStatus.AWAITING_DEPOSIT: "deposit due date passed and the gateway cannot say",
    }
    for order_id, status, payment_status in stuck:
        reason = reasons[payment_status] if status == RESERVED else "refund not confirmed by the gateway"
        flag(order_id, f"{reason} after {minutes} minutes")


@dataclass(frozen=True)
class FlaggedPage:
    orders: list[Order]
    page: int
    page_size: int
    total: int


def flagged(page: int, page_size: int) -> FlaggedPage:
    """Orders whose payment needs a person, the most recently flagged first."""
    where = Order.payment_flag.is_null(False)
    total = Order.select(fn.COUNT(Order.id)).where(where).scalar() or 0
    rows = list(
        Order.select().where(where).order_by(Order.payment_flagged_at.desc(), Order.id.desc()).paginate(page, page_size)
    )
    return FlaggedPage(rows, page, page_size, int(total))
