"""Payment steps of the pipeline, each beside its undo: authorize <-> void, capture <-> refund.

Every external call carries a stable idempotency key (`capture:<order_number>` ...), so running a
step twice (a retried or redelivered task) reaches the gateway twice but charges once; the state
machine then refuses to record the same outcome twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from models import events
from models.accounts.service import check_current, user_for
from models.accounts.tokens import TokenClaims
from models.errors import Conflict, InvalidInput, NotFound
from models.events import CapturePayment, RefundPayment, RemoveOrderedFromCart, SendOrderEmail
from models.infra import failpoints
from models.infra.db import db, prepared, raw_rows, tuples
from models.orders import holds
from models.orders.guests import Customer, is_customer
from models.orders.states import (
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    FAILED,
    RESERVED,
    PaymentStatus,
    lock,
    record,
    remember_number,
    touch,
    transition,
)
from models.payments import (
    Authorization,
    GatewayRejected,
    GatewayUnavailable,
    ManualActionRequired,
    PaymentDeclined,
    PaymentOrder,
    PaymentResult,
    get_gateway,
)
from models.payments.webhooks import secret_digest
from models.tables import Order, OrderItem, User, utcnow

log = logging.getLogger("shop.payments")
CLOSED_UNPAID = (CANCELLED, EXPIRED, FAILED)
# The flag of a refund the gateway declined: final until a person clears it (README "Recovering by hand").
REFUND_DECLINED = "refund declined by the gateway"
UNCAPTURED = (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.AWAITING_DEPOSIT)
# What a gateway may still turn into a charge (a confirm in flight, an authorisation, an open virtual
# account): a void that finds one of these has released nothing yet.
STILL_OPEN = ("pending", "authorized", "awaiting_deposit")


def ordered_lines(order_id: int, read: Order | None = None) -> tuple[tuple[int, int], ...]:
    """(product_id, quantity) of an order's lines whose product still exists; from `read` when
    with_payer() read it (lines never change), else one query."""
    if read is not None and hasattr(read, "item_lines"):
        return tuple(
            (int(product_id), int(quantity)) for product_id, quantity in read.item_lines if product_id is not None
        )
    rows = tuples(
        OrderItem.select(OrderItem.product, OrderItem.quantity).where(
            OrderItem.order == order_id, OrderItem.product.is_null(False)
        )
    )
    return tuple((product_id, quantity) for product_id, quantity in rows)


def reference(order: Order) -> str | None:
    """The gateway's id for the order's payment: the recorded one, else the one the shopper handed in."""
    proof = order.payment_proof or {}
    return order.payment_transaction_id or proof.get("payment_key") or proof.get("payment_intent_id")


# The order with what its gateway is told about it (payment_order), in one statement: the steps
# below read both before every gateway call, and submit() checks a member's access token against
# the user's columns it brings. Prepared once per connection (models/infra/db.py), so its columns
# are named: a `*` would change its result when a migration adds a column.
_WITH_PAYER = (
    "SELECT "
    + ", ".join(f'o."{field.column_name}"' for field in Order._meta.sorted_fields)
    + ", COALESCE(o.guest_email, u.email) AS payer_email, COALESCE(o.guest_name, u.full_name) AS payer_name, "
    "u.token_version AS payer_token_version, u.is_active AS payer_is_active, "
    "ARRAY(SELECT i.product_name FROM order_items i WHERE i.order_id = o.id ORDER BY i.id) AS item_names, "
    "ARRAY(SELECT ARRAY[i.product_id, i.quantity] FROM order_items i "
    "WHERE i.order_id = o.id ORDER BY i.id) AS item_lines "
    "FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE o.id = %s"
)
_READ_WITH_PAYER = prepared(_WITH_PAYER)
_LOCK_WITH_PAYER = prepared(_WITH_PAYER + " FOR UPDATE OF o")


def with_payer(order_id: int, for_update: bool = False) -> Order | None:
    """The order, carrying what payment_order() needs (no second query); for_update locks its row
    (the caller's transaction), as lock() does."""
    rows = raw_rows(Order, _LOCK_WITH_PAYER if for_update else _READ_WITH_PAYER, order_id)
    order = rows[0] if rows else None
    if order is not None and for_update:
        remember_number(order)
    return order


def payment_order(order: Order) -> PaymentOrder:
    """What the gateway needs: the customer (a member or a guest) and the item names, as
    with_payer() read them, else one query."""
    if hasattr(order, "item_names"):
        email, name, names = (getattr(order, column) for column in ("payer_email", "payer_name", "item_names"))
    else:
        email, name, names = db.obj.execute_sql(
            "SELECT COALESCE(o.guest_email, u.email), COALESCE(o.guest_name, u.full_name), "
            "array_agg(i.product_name ORDER BY i.id) FROM orders o "
            "LEFT JOIN users u ON u.id = o.user_id LEFT JOIN order_items i ON i.order_id = o.id "
            "WHERE o.id = %s GROUP BY o.guest_email, o.guest_name, u.email, u.full_name",
            (order.id,),
        ).fetchone() or ("", "", [])
    names = [n for n in names or [] if n]
    title = names[0] if names else order.order_number
    if len(names) > 1:
        title += f" and {len(names) - 1} more"
    return PaymentOrder(
        order.order_number, order.total, order.currency, title[:100], email or "", name or "", reference(order)
    )


def prepared_offline(order: Order) -> Authorization | None:
    """The payment preparation of an order about to turn reserved, when its gateway prepares it
    without calling anyone (dummy, Toss): the reservation then saves it in its own transaction,
    one write and one commit instead of two. None: authorize() prepares it after the commit (a
    gateway that is called, or one that refused). `order` is locked, read by with_payer()."""
    gateway = get_gateway(order.payment_gateway)
    if not gateway.prepares_offline or order.payment_next_action is not None or order.total == 0:
        return None
    try:
        return gateway.authorize(payment_order(order), f"authorize:{order.order_number}")
    except GatewayRejected:
        return None  # authorize() meets the refusal again and flags the order


def authorize(order_id: int, task_id: str | None = None) -> None:
    """Prepare payment for a reserved order (Stripe: a manual-capture intent); stores next_action."""
    order = with_payer(order_id)
    if order is None or order.status != RESERVED or order.payment_next_action is not None or order.total == 0:
        return
    try:
        auth = get_gateway(order.payment_gateway).authorize(payment_order(order), f"authorize:{order.order_number}")
    except GatewayRejected as error:
        flag(order_id, f"payment preparation refused by the gateway: {error.code}", task_id)
        return
    with db.atomic():
        order = lock(order_id)
        if order.status == RESERVED and order.payment_next_action is None:
            touch(
                order,
                payment_next_action=auth.next_action,
                payment_transaction_id=auth.transaction_id or order.payment_transaction_id,
            )
            record(
                order,
                "payment_prepared",
                {"gateway": order.payment_gateway, "transaction_id": auth.transaction_id},
                task_id,
            )
    return


def void(order_id: int, task_id: str | None = None) -> None:
    """Undo of authorize: release what the gateway holds for an order that closed unpaid (a Stripe
    authorisation, an open virtual account). A payment that turns out captured is refunded; one the
    gateway may still complete (a confirm in flight) is not called voided until it settles.

    Raises GatewayUnavailable (the task asks again later).
    """
    order = with_payer(order_id)
    if order is None or order.status not in CLOSED_UNPAID or order.payment_status not in UNCAPTURED:
        return
    # The shopper handed in a payment: a capture may have reached the gateway even without a
    # recorded reference (its answer lost), so the gateway is asked by the order's number then.
    if reference(order) or order.payment_submitted_at is not None:
        try:
            result = get_gateway(order.payment_gateway).void(
                payment_order(order), reference(order), f"void:{order.order_number}"
            )
        except GatewayRejected as error:
            flag(order_id, f"void refused by the gateway: {error.code}", task_id)
            return
        except PaymentDeclined:  # the gateway's payment is not this order's: nothing of ours is held
            result = PaymentResult(reference(order) or "", "voided", 0)
        failpoints.hit("void.after_gateway")
        if result.status == "captured":
            with db.atomic():
                confirm_paid(lock(order_id), result, task_id)
            return
        if result.status in STILL_OPEN:
            raise GatewayUnavailable(
                f"void of {order.order_number}: the gateway's payment is {result.status}, not settled yet"
            )
    with db.atomic():
        order = lock(order_id)
        if order.payment_status in UNCAPTURED:
            touch(order, payment_status=PaymentStatus.VOIDED, payment_flag=None)
            record(order, "payment_voided", {"transaction_id": reference(order)}, task_id)


def submit(order_id: int, user: Customer | TokenClaims, proof: dict[str, object]) -> Order:
    """Hand the client's payment proof to the pipeline (POST /orders/{id}/pay). user: a guest's
    access, a member, or a member's verified access-token claims, checked against the users row
    the order's lock joins (what accounts.user_for checks, without a statement of its own).

    Raises AuthError not_authenticated (a revoked token, an inactive member), NotFound
    order_not_found, Conflict invalid_state / payment_in_progress, InvalidInput validation_error /
    amount_mismatch.
    """
    with db.atomic():
        order = with_payer(order_id, for_update=True)
        if isinstance(user, TokenClaims):
            user = _member(order, user)
        if order is None or not is_customer(order, user):
            raise NotFound("order_not_found", "No such order.", order_id=order_id)
        if order.status != RESERVED:
            # Also when a webhook took the payment first: details say the order is paid.
            raise Conflict(
                "invalid_state",
                f"Payment is only accepted for reserved orders; this one is {order.status}.",
                status=order.status,
                payment_status=order.payment_status,
            )
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


def _member(order: Order | None, claims: TokenClaims) -> User:
    """The member the claims name, checked as accounts.user_for checks them: from the row the
    lock joined when the order is theirs; else by accounts.user_for (a revoked token is 401 before
    another's order is 404)."""
    if order is None or order.user_id != claims.user_id:
        return user_for(claims)
    check_current(claims, *(getattr(order, column) for column in ("payer_is_active", "payer_token_version")))
    return User(id=claims.user_id)


def capture(order_id: int, task_id: str | None = None) -> None:
    """Capture the submitted payment -> confirmed/paid; a decline -> failed with stock released; a
    virtual account -> awaiting_deposit (stock held until its due date); not paid yet -> unchanged.

    Raises GatewayUnavailable (the task retries with backoff).
    """
    order = with_payer(order_id)
    if order is None or order.payment_proof is None or order.payment_status == PaymentStatus.PAID:
        return
    if order.status != RESERVED:
        return
    gateway = get_gateway(order.payment_gateway)
    failpoints.hit("capture.before_gateway")
    try:
        if order.payment_status == PaymentStatus.AWAITING_DEPOSIT:  # has the transfer arrived?
            deposit = reference(order)
            assert deposit is not None, "await_deposit recorded the virtual account's transaction id"
            result = gateway.status(payment_order(order), deposit)
        else:
            result = gateway.capture(payment_order(order), order.payment_proof, f"capture:{order.order_number}")
    except PaymentDeclined as declined:
        _declined(order_id, declined, task_id)
        return
    except GatewayRejected as error:
        flag(order_id, f"capture refused by the gateway: {error.code}", task_id)
        return
    failpoints.hit("capture.after_gateway")
    read = order
    with db.atomic():
        order = lock(order_id)
        if result.status == "captured":
            confirm_paid(order, result, task_id, read)
        elif result.status == "awaiting_deposit":
            await_deposit(order, result, task_id)
        elif result.status == "authorized" and order.payment_status == PaymentStatus.PENDING:
            touch(order, payment_status=PaymentStatus.AUTHORIZED)
            record(order, "payment_authorized", {"transaction_id": result.transaction_id}, task_id)


# An order whose total is 0 (a discount that covers the goods, free shipping): no gateway can charge
# nothing (Stripe and Toss refuse an amount of 0), and nothing needs charging.
NOTHING_TO_CHARGE = PaymentResult("", "captured", 0)


def confirm_free(order: Order, task_id: str | None) -> None:
    """A locked order that has just turned reserved with a total of 0: confirmed at once, in the
    reservation's transaction, with no gateway asked (payment_status paid, amount 0); its
    confirmation email and cart trim follow as for any confirmed order."""
    confirm_paid(order, NOTHING_TO_CHARGE, task_id, read=order)


def confirm_paid(order: Order, result: PaymentResult, task_id: str | None, read: Order | None = None) -> None:
    """A locked order whose payment the gateway took: reserved -> confirmed/paid; closed meanwhile ->
    paid, then refunded. Never twice, never backwards. read: the same order as with_payer() read
    it before the gateway call (its lines, for clearing the cart without another query)."""
    if order.payment_status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
        return
    if result is NOTHING_TO_CHARGE:
        detail: dict[str, Any] = {"amount": 0, "nothing_to_charge": True}
    else:
        detail = {"transaction_id": result.transaction_id, "amount": result.amount}
    if order.status == RESERVED:
        transition(
            order,
            CONFIRMED,
            "payment_captured",
            detail,
            task_id,
            payment_status=PaymentStatus.PAID,
            paid_at=utcnow(),
            payment_transaction_id=result.transaction_id or None,
            payment_flag=None,
        )
        events.emit(SendOrderEmail(order.id, "confirmation"))
        if order.session_id:
            events.emit(
                RemoveOrderedFromCart(order.id, order.session_id, ordered_lines(order.id, read), order.order_number)
            )
        return
    # Cancelled or expired while the payment was in flight: keep the money only long enough to give it back.
    touch(order, payment_status=PaymentStatus.PAID, paid_at=utcnow(), payment_transaction_id=result.transaction_id)
    record(order, "payment_captured_after_close", detail, task_id)
    events.emit(RefundPayment(order.id))


def await_deposit(order: Order, result: PaymentResult, task_id: str | None) -> None:
    """A locked reserved order whose virtual account was issued: keep the stock until its due date."""
    if order.status != RESERVED or order.payment_status != PaymentStatus.PENDING:
        return
    account = dict(result.details.get("virtual_account") or {})
    due = datetime.fromisoformat(account["due_date"]) if account.get("due_date") else order.reserved_until
    touch(order, payment_status=PaymentStatus.AWAITING_DEPOSIT, reserved_until=due, **opened_fields(result))
    record(
        order,
        "payment_awaiting_deposit",
        {"transaction_id": result.transaction_id, "bank": account.get("bank"), "due_date": account.get("due_date")},
        task_id,
    )
    events.emit(SendOrderEmail(order.id, "awaiting_deposit"))  # where and by when to pay


def opened_fields(result: PaymentResult) -> dict[str, Any]:
    """The order's columns for a payment the gateway holds open: its id, and for a virtual account
    the account and the digest of the secret its deposit callback must carry."""
    if result.status != "awaiting_deposit":
        return {"payment_transaction_id": result.transaction_id}
    secret = result.details.get("secret")
    return {
        "payment_transaction_id": result.transaction_id,
        "payment_details": {
            "virtual_account": dict(result.details.get("virtual_account") or {}),
            "secret_sha256": secret_digest(secret) if secret else None,
        },
    }


def flag(order_id: int, reason: str, task_id: str | None = None, **detail: Any) -> None:
    """Mark the order's payment for a person (the admin's flagged list), once per reason; logs loudly."""
    log.error(
        "payment of order %s needs a person: %s",
        order_id,
        reason,
        extra={"order_id": order_id, "alert": "payment_flagged", **detail},
    )
    with db.atomic():
        order = lock(order_id)
        if order.payment_flag == reason[:200]:
            return
        touch(order, payment_flag=reason[:200], payment_flagged_at=utcnow())
        record(order, "payment_flagged", {"reason": reason, **detail}, task_id)


def _declined(
    order_id: int, declined: PaymentDeclined, task_id: str | None, actor: str = "task:pipeline.capture_payment"
) -> None:
    with db.atomic():
        order = lock(order_id)
        if order.status != RESERVED:
            return
        released = holds.give_back(order, actor)
        transition(
            order,
            FAILED,
            "payment_declined",
            {"message": declined.message, **declined.details},
            task_id,
            failure_reason="payment_declined",
            failure_detail=declined.details,
            payment_status=PaymentStatus.FAILED,
            reserved_until=None,
            **released,
        )
    events.emit(SendOrderEmail(order_id, "payment_failed"))


def refund(order_id: int, task_id: str | None = None) -> None:
    """Undo of capture: give back the money of an order that closed after it was paid. A refund the
    gateway declines, or cannot make without a person, flags the order instead (never retried here)."""
    order = with_payer(order_id)
    if order is None or order.payment_status != PaymentStatus.PAID or order.status not in CLOSED_UNPAID:
        return
    if (order.payment_flag or "").startswith(REFUND_DECLINED):  # declined before: asking again changes nothing
        return
    if order.total == 0 and not order.payment_transaction_id:  # confirm_free: nothing was charged
        with db.atomic():
            order = lock(order_id)
            if order.payment_status == PaymentStatus.PAID:
                touch(order, payment_status=PaymentStatus.REFUNDED)
                record(order, "payment_refunded", {"amount": 0, "nothing_to_charge": True}, task_id)
        return
    if not order.payment_transaction_id:
        raise InvalidInput("bad_request", "A paid order without a transaction id cannot be refunded.")
    try:
        result = get_gateway(order.payment_gateway).refund(
            payment_order(order), order.payment_transaction_id, order.total, f"refund:{order.order_number}"
        )
    except ManualActionRequired as needed:
        flag(order_id, f"refund needs a person: {needed}", task_id)
        return
    except PaymentDeclined as declined:
        flag(order_id, f"{REFUND_DECLINED}: {declined.message}", task_id, **declined.details)
        return
    except GatewayRejected as error:
        flag(order_id, f"refund refused by the gateway: {error.code}", task_id)
        return
    if result.status != "refunded":  # the gateway answered, and has not given the money back
        said = result.raw.get("refund_status")  # Stripe's own word for its refund object
        reason = f"refund not made by the gateway: it says {result.status}" + (f" ({said})" if said else "")
        flag(order_id, reason, task_id, **{k: v for k, v in result.raw.items() if k.startswith("refund_")})
        return
    with db.atomic():
        order = lock(order_id)
        if order.payment_status != PaymentStatus.PAID:
            return
        touch(order, payment_status=PaymentStatus.REFUNDED, payment_flag=None)
        record(order, "payment_refunded", {"transaction_id": result.transaction_id, "amount": result.amount}, task_id)
    events.emit(SendOrderEmail(order_id, "refunded"))
