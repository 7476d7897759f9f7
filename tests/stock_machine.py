"""The shop that tests/test_stock_conservation_property.py drives: a hypothesis state machine's
base with the domain steps, the outbox of what they emit, and the invariants checked after each
step (see that module's docstring). The rules, the scenario and the tests are there."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import target
from hypothesis.stateful import RuleBasedStateMachine, invariant

from models import events
from models.accounts import service as accounts
from models.cart.store import cart_key
from models.errors import DomainError
from models.infra.db import db
from models.infra.redis_client import get_redis
from models.orders import payment_steps, pipeline
from models.orders.checkout import place_order
from models.orders.states import PaymentStatus
from models.payments import GatewayUnavailable
from models.payments.dummy import DummyGateway
from models.tables import ALL_MODELS, Order, Product, User, utcnow

START = [6, 4]
HOLDING = ("reserved", "confirmed", "shipped", "delivered")
SOLD = ("confirmed", "shipped", "delivered")
CLOSED = ("failed", "expired", "cancelled")
ADDRESS = {"recipient_name": "A", "phone": "0101234567", "postal_code": "04524", "address_line1": "1", "city": "Seoul"}
# The follow-ups this test carries out; mail, cart trimming and stock alerts do not move stock or money.
FOLLOW_UPS: dict[type[events.Command], Callable[[int], Any]] = {
    events.ReserveStock: pipeline.reserve_stock,
    events.PreparePayment: payment_steps.authorize,
    events.CapturePayment: payment_steps.capture,
    events.VoidPayment: payment_steps.void,
    events.RefundPayment: payment_steps.refund,
}
LATER = {"a reservation past its time": timedelta(minutes=20), "a day later": timedelta(days=1)}

# The statuses of the orders each order step picks among: where it can do something (None: any
# order, so refusals are tried too).
ORDER_STEPS: dict[str, tuple[str, ...] | None] = {
    "reserve": None,
    "pay": ("reserved",),
    "cancel": ("pending", "reserved", "confirmed", "shipped"),
    "cancel_sold": ("confirmed",),
    "ship": ("confirmed",),
    "deliver": ("shipped",),
    "refund": None,
}


class StockMachine(RuleBasedStateMachine):
    """One shop, fresh for every example: two users, two products, the orders placed so far."""

    reached: set[str] = set()  # over the whole run, across examples

    def __init__(self) -> None:
        super().__init__()
        # The few rows an example makes go faster with DELETE than TRUNCATE (tests.support.truncate_all).
        db.obj.execute_sql("; ".join(f'DELETE FROM "{m._meta.table_name}"' for m in reversed(ALL_MODELS)))
        get_redis().flushdb()
        self.users = [
            accounts.register(f"shopper{n}@example.com", "correct-horse-9", f"Shopper {n}", None, f"property-{n}")
            for n in range(2)
        ]
        self.products = [
            Product.create(
                sku=f"C-{n}",
                name=f"C{n}",
                slug=f"c-{n}",
                price=10000 + 500 * n,
                stock_quantity=start,
                tags=[],
                images=[],
            )
            for n, start in enumerate(START)
        ]
        self.outbox: list[events.Command] = []  # emitted follow-ups not yet carried out, in emission order
        self.outbox_lock = threading.Lock()
        self.sessions = 0
        self.reached_here: set[str] = set()
        self.statuses: dict[int, str] = {}  # order id -> status, as of the last check

    # ------------------------------------------------------------------------ running one step
    def step(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a domain step as a door would: collect what it emits, keep the commands for later.
        A refused transition (DomainError) changes nothing; GatewayUnavailable is the caller's."""
        try:
            with events.collecting() as emitted:
                fn(*args)
        except DomainError:
            return
        self.post(emitted)

    def post(self, emitted: list[events.Message]) -> None:
        wanted = [m for m in emitted if isinstance(m, events.Command) and type(m) in FOLLOW_UPS]
        with self.outbox_lock:
            self.outbox.extend(wanted)

    def carry_out(self, command: events.Command) -> None:
        """A follow-up's task: a transient gateway error puts it back, as the task's retry would."""
        try:
            self.step(FOLLOW_UPS[type(command)], command.order_id)  # type: ignore[attr-defined]
        except GatewayUnavailable:
            self.post([command])

    def take(self, pick: int) -> events.Command | None:
        with self.outbox_lock:
            return self.outbox.pop(pick % len(self.outbox)) if self.outbox else None

    # ---------------------------------------------------------------------- the steps, by name
    def place(self, user: int, lines: dict[int, int]) -> int | None:
        """Check a cart out; None when the checkout refuses it (more than is in stock right now)."""
        with self.outbox_lock:
            self.sessions += 1
            session = f"property-session-{self.sessions:05d}"
        # The cart store's own format (models/cart/store.py): product id -> quantity in one hash.
        get_redis().hset(cart_key(session), mapping={self.products[i].id: q for i, q in lines.items()})
        body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment_method": "dummy"}
        try:
            with events.collecting() as emitted:
                order_id = place_order(self.users[user], session, body, None).order.id
        except DomainError:
            return None
        self.post(emitted)
        return order_id

    def pay_for(self, order_id: int, token: str) -> None:
        self.step(payment_steps.authorize, order_id)
        owner = User.get_by_id(Order.get_by_id(order_id).user_id)
        self.step(payment_steps.submit, order_id, owner, {"token": token})

    def cancel_order(self, order_id: int, by_customer: bool) -> None:
        owner = User.get_by_id(Order.get_by_id(order_id).user_id) if by_customer else None
        self.step(pipeline.cancel, order_id, owner, "changed my mind" if by_customer else "admin")

    def expire_at(self, later: timedelta) -> None:
        self.step(pipeline.expire_reservations, utcnow() + later)

    def ship_order(self, order_id: int) -> None:
        self.step(pipeline.admin_update, order_id, "shipped", "TRACK-1", "04")

    def deliver_order(self, order_id: int) -> None:
        self.step(pipeline.admin_update, order_id, "delivered", None, None)

    def redrive(self) -> None:
        self.step(pipeline.redrive, utcnow() + timedelta(hours=1))

    def follow_ups_of(self, order_id: int) -> None:
        """Carry out every queued follow-up of one order, and what they emit in turn."""
        while True:
            with self.outbox_lock:
                mine = [c for c in self.outbox if c.order_id == order_id]  # type: ignore[attr-defined]
                for command in mine:
                    self.outbox.remove(command)
            if not mine:
                return
            for command in mine:
                self.carry_out(command)

    def drain(self, redrive: bool = True) -> None:
        """Drive everything to rest: every queued follow-up, then the re-drive and what it asks for.
        Finite: tok_error fails once per idempotency key, and every step is idempotent."""
        self.run_queue()
        if redrive:
            self.redrive()
            self.run_queue()

    def run_queue(self) -> None:
        for _ in range(1000):
            command = self.take(0)
            if command is None:
                return
            self.carry_out(command)
        raise AssertionError(f"the outbox never drained: {self.outbox[:10]}")

    def among(self, pick: int, statuses: tuple[str, ...] | None) -> int | None:
        """One of the orders (as of the last check), or of those in these statuses."""
        candidates = [i for i, status in self.statuses.items() if statuses is None or status in statuses]
        return candidates[pick % len(candidates)] if candidates else None

    def prepare(self, step: tuple[Any, ...]) -> Callable[[], None] | None:
        """A drawn step as a call, its order or follow-up chosen now (None: nothing to do). A quick
        step is followed at once by its order's follow-ups, as a warm worker would run them."""
        kind, pick, arg, quick = step
        if kind == "place":
            first, qty, extra = arg
            lines = {first: qty, 1 - first: extra} if extra else {first: qty}

            def place() -> None:
                order_id = self.place(pick, lines)
                if quick and order_id is not None:
                    self.follow_ups_of(order_id)

            return place
        if kind == "follow_up":
            command = self.take(pick)
            return None if command is None else (lambda: self.carry_out(command))
        if kind == "expire":
            return lambda: self.expire_at(LATER[arg])
        if kind == "redrive":
            return self.redrive
        order_id = self.among(pick, ORDER_STEPS[kind])
        if order_id is None:
            return None
        calls: dict[str, Callable[[], None]] = {
            "reserve": lambda: self.step(pipeline.reserve_stock, order_id),
            "pay": lambda: self.pay_for(order_id, arg),
            "cancel": lambda: self.cancel_order(order_id, arg),
            "cancel_sold": lambda: self.cancel_order(order_id, arg),
            "ship": lambda: self.ship_order(order_id),
            "deliver": lambda: self.deliver_order(order_id),
            "refund": lambda: self.step(payment_steps.refund, order_id),
        }
        if not quick:
            return calls[kind]

        def then_its_follow_ups() -> None:
            calls[kind]()
            self.follow_ups_of(order_id)

        return then_its_follow_ups

    def run_step(self, step: tuple[Any, ...]) -> None:
        call = self.prepare(step)
        if call is not None:
            call()

    # ------------------------------------------------------------------------------ invariants
    def check(self) -> None:
        """Every invariant of the module docstring: three queries (raw SQL, as this runs after every
        step) and the gateway's ledger."""
        stock = db.obj.execute_sql(
            "SELECT p.id, p.stock_quantity, coalesce(sum(i.quantity) FILTER (WHERE o.stock_held), 0) "
            "FROM products p LEFT JOIN order_items i ON i.product_id = p.id LEFT JOIN orders o ON o.id = i.order_id "
            "GROUP BY p.id ORDER BY p.id"
        ).fetchall()
        for (product_id, on_hand, held), start in zip(stock, START, strict=True):
            assert on_hand >= 0, f"product {product_id}: {on_hand} on hand"
            assert on_hand + held == start, f"product {product_id}: {on_hand} on hand + {held} held != {start}"
        with self.outbox_lock:
            refunds_due = {c.order_id for c in self.outbox if isinstance(c, events.RefundPayment)}
        orders = db.obj.execute_sql(
            "SELECT id, status, stock_held, payment_status, failure_reason, payment_transaction_id, total "
            "FROM orders ORDER BY id"
        ).fetchall()
        self.statuses = {order_id: status for order_id, status, *_ in orders}
        charges, refunds = {}, {}
        for order_id, status, stock_held, payment_status, failure_reason, transaction_id, total in orders:
            assert stock_held == (status in HOLDING), f"order {order_id} is {status} with stock_held={stock_held}"
            if status in SOLD:
                assert payment_status == PaymentStatus.PAID, f"order {order_id} is {status}, payment {payment_status}"
            if status in CLOSED and payment_status == PaymentStatus.PAID:
                assert order_id in refunds_due, f"order {order_id} is {status} and paid, and no refund is due"
            if payment_status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
                charges[transaction_id] = total
            if payment_status == PaymentStatus.REFUNDED:
                refunds[transaction_id] = total
                self.reached_here.add("refunded")
            self.reached_here.add(status if status != "failed" else f"failed:{failure_reason}")
        # The gateway's own ledger: one charge per paid or refunded order, for its total (a second
        # capture of the same payment would be a second charge, or a charge without its order).
        ledger = DummyGateway.ledger()
        assert ledger.charges == charges, f"gateway charges {ledger.charges}, paid orders {charges}"
        assert ledger.refunds == refunds, f"gateway refunds {ledger.refunds}, refunded orders {refunds}"
        twice = db.obj.execute_sql(
            "SELECT order_id, count(*) FILTER (WHERE type IN ('payment_captured', 'payment_captured_after_close')), "
            "count(*) FILTER (WHERE type = 'payment_refunded') FROM order_events GROUP BY order_id "
            "HAVING count(*) FILTER (WHERE type IN ('payment_captured', 'payment_captured_after_close')) > 1 "
            "OR count(*) FILTER (WHERE type = 'payment_refunded') > 1"
        ).fetchall()
        assert not twice, f"(order, captures, refunds) recorded more than once: {twice}"

    @invariant()
    def conserved(self) -> None:
        self.check()

    def finish(self) -> None:
        """Drive everything to rest, check again, and add what this example reached to the run's."""
        self.drain()
        self.check()
        paid_and_closed = Order.select().where(Order.status.in_(CLOSED), Order.payment_status == PaymentStatus.PAID)
        assert not paid_and_closed.exists(), f"closed orders still paid once driven: {[o.id for o in paid_and_closed]}"
        StockMachine.reached |= self.reached_here

    def teardown(self) -> None:
        if sys.exc_info()[0] is not None:
            return  # a step or a check failed: that is the one failure to report
        self.finish()
        # Steer hypothesis towards runs that reach many states (it keeps what scores higher).
        target(float(len(self.reached_here)), label="distinct states reached")
