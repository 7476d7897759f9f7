"""Payment steps of the pipeline, each beside its undo: authorize <-> void, capture <-> refund.

Every external call carries a stable idempotency key (`capture:<order_number>` ...), so running a
step twice (a retried or redelivered task) reaches the gateway twice but charges once; the state
machine then refuses to record the same outcome twice.
"""

from __future__ import annotations

from models import events
from models.errors import Conflict, InvalidInput, NotFound
from models.events import CapturePayment, RefundPayment, RemoveOrderedFromCart, SendOrderEmail
from models.infra import failpoints
from models.infra.db import db
from models.orders.inventory import release
from models.orders.states import (
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    FAILED,
    RESERVED,
    PaymentStatus,
    lock,
    record,
    touch,
    transition,
)
from models.payments import PaymentDeclined, PaymentOrder, get_gateway
from models.tables import Order, OrderItem, User, utcnow

CLOSED_UNPAID = (CANCELLED, EXPIRED, FAILED)
UNCAPTURED = (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED)


def ordered_lines(order_id: int) -> tuple[tuple[int, int], ...]:
    """(product_id, quantity) of an order's lines whose product still exists."""
    rows = (OrderItem.select(OrderItem.product, OrderItem.quantity)
            .where(OrderItem.order == order_id, OrderItem.product.is_null(False)).tuples())
    return tuple((product_id, quantity) for product_id, quantity in rows)


def payment_order(order: Order) -> PaymentOrder:
    """What the gateway needs: one query for the customer's email and the item names."""
    email, names = db.obj.execute_sql(
        "SELECT u.email, array_agg(i.product_name ORDER BY i.id) FROM users u "
        "LEFT JOIN order_items i ON i.order_id = %s WHERE u.id = %s GROUP BY u.email",
        (order.id, order.user_id)).fetchone() or ("", [])
    names = [n for n in names or [] if n]
    title = names[0] if names else order.order_number
    if len(names) > 1:
        title += f" and {len(names) - 1} more"
    return PaymentOrder(order.order_number, order.total, order.currency, title[:100], email)


def authorize(order_id: int, task_id: str | None = None) -> None:
    """Prepare payment for a reserved order (Stripe: a manual-capture intent); stores next_action."""
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.status != RESERVED or order.payment_next_action is not None:
        return
    auth = get_gateway(order.payment_gateway).authorize(payment_order(order), f"authorize:{order.order_number}")
    with db.atomic():
        order = lock(order_id)
        if order.status == RESERVED and order.payment_next_action is None:
            touch(order, payment_next_action=auth.next_action,
                  payment_transaction_id=auth.transaction_id or order.payment_transaction_id)
            record(order, "payment_prepared", {"gateway": order.payment_gateway,
                                               "transaction_id": auth.transaction_id}, task_id)
    return


def void(order_id: int, task_id: str | None = None) -> None:
    """Undo of authorize: release an authorisation of an order that closed unpaid."""
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.status not in CLOSED_UNPAID or order.payment_status not in UNCAPTURED:
        return
    if order.payment_transaction_id:
        get_gateway(order.payment_gateway).void(payment_order(order), order.payment_transaction_id,
                                                f"void:{order.order_number}")
    with db.atomic():
        order = lock(order_id)
        if order.payment_status in UNCAPTURED:
            touch(order, payment_status=PaymentStatus.VOIDED)
            record(order, "payment_voided", {"transaction_id": order.payment_transaction_id}, task_id)
    return


def submit(order_id: int, user: User, proof: dict[str, object]) -> Order:
    """Hand the client's payment proof to the pipeline (POST /orders/{id}/pay).

    Raises NotFound order_not_found, Conflict invalid_state / payment_in_progress, InvalidInput
    validation_error / amount_mismatch.
    """
    with db.atomic():
        order = lock(order_id)
        if order.user_id != user.id:
            raise NotFound("order_not_found", "No such order.", order_id=order_id)
        if order.status != RESERVED:
            raise Conflict("invalid_state",
                           f"Payment is only accepted for reserved orders; this one is {order.status}.",
                           status=order.status)
        normalised = get_gateway(order.payment_gateway).validate_proof(payment_order(order), dict(proof))
        if order.payment_submitted_at is not None:
            if normalised != order.payment_proof:
                raise Conflict("payment_in_progress", "A payment for this order is already being processed.")
            events.emit(CapturePayment(order.id))
            return order
        touch(order, payment_proof=normalised, payment_submitted_at=utcnow())
        record(order, "payment_submitted", {"gateway": order.payment_gateway})
    events.emit(CapturePayment(order.id))
    return order


def capture(order_id: int, task_id: str | None = None) -> None:
    """Capture the submitted payment -> confirmed/paid; a decline -> failed with stock released.

    Raises GatewayUnavailable (the task retries with backoff).
    """
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.payment_proof is None or order.payment_status == PaymentStatus.PAID:
        return
    if order.status != RESERVED:
        return
    try:
        result = get_gateway(order.payment_gateway).capture(payment_order(order), order.payment_proof,
                                                            f"capture:{order.order_number}")
    except PaymentDeclined as declined:
        _declined(order_id, declined, task_id)
        return
    failpoints.hit("capture.after_gateway")
    with db.atomic():
        order = lock(order_id)
        if order.payment_status == PaymentStatus.PAID:
            return
        detail = {"transaction_id": result.transaction_id, "amount": result.amount}
        if order.status == RESERVED:
            transition(order, CONFIRMED, "payment_captured", detail, task_id, payment_status=PaymentStatus.PAID,
                       paid_at=utcnow(), payment_transaction_id=result.transaction_id)
            events.emit(SendOrderEmail(order.id, "confirmation"))
            if order.session_id:
                events.emit(RemoveOrderedFromCart(order.id, order.session_id, ordered_lines(order.id)))
            return
        # Cancelled or expired while the capture was in flight: keep the money only long enough
        # to give it back.
        touch(order, payment_status=PaymentStatus.PAID, paid_at=utcnow(), payment_transaction_id=result.transaction_id)
        record(order, "payment_captured_after_close", detail, task_id)
        events.emit(RefundPayment(order.id))


def _declined(order_id: int, declined: PaymentDeclined, task_id: str | None) -> None:
    with db.atomic():
        order = lock(order_id)
        if order.status != RESERVED:
            return
        if order.stock_held:
            release(order)
        transition(order, FAILED, "payment_declined", {"message": declined.message, **declined.details}, task_id,
                   failure_reason="payment_declined", failure_detail=declined.details,
                   payment_status=PaymentStatus.FAILED, stock_held=False, reserved_until=None)
    events.emit(SendOrderEmail(order_id, "payment_failed"))


def refund(order_id: int, task_id: str | None = None) -> None:
    """Undo of capture: give back the money of an order that closed after it was paid."""
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.payment_status != PaymentStatus.PAID or order.status not in CLOSED_UNPAID:
        return
    if not order.payment_transaction_id:
        raise InvalidInput("bad_request", "A paid order without a transaction id cannot be refunded.")
    result = get_gateway(order.payment_gateway).refund(payment_order(order), order.payment_transaction_id,
                                                       order.total, f"refund:{order.order_number}")
    with db.atomic():
        order = lock(order_id)
        if order.payment_status != PaymentStatus.PAID:
            return
        touch(order, payment_status=PaymentStatus.REFUNDED)
        record(order, "payment_refunded", {"transaction_id": result.transaction_id, "amount": result.amount}, task_id)
    events.emit(SendOrderEmail(order_id, "refunded"))
