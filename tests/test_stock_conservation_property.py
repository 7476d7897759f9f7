"""Stock is conserved whatever the shoppers, the gateway, the administrators and the clock do.

A hypothesis state machine places orders, reserves, pays (accepted, declined, a transient gateway
error), cancels at any point, expires reservations, ships, delivers, refunds and re-drives,
calling the same domain steps the Celery tasks call. What a step emits is kept in an outbox and
carried out by a rule of its own, in whatever order hypothesis picks (as the queue would), or
right after the step (a warm worker): a capture may land after the order was cancelled, a refund
only happens when its follow-up runs.
After every step it checks:
- stock on hand + units of the orders holding stock = the starting stock, and no stock is negative;
- only reserved orders and sold ones (confirmed, shipped, delivered) hold stock; a pending or
  closed (failed, expired, cancelled) order holds none;
- a sold order is paid; a closed order that is paid has its refund on the way, and once the
  outbox is drained no closed order is still paid;
- the dummy gateway holds one charge per paid or refunded order, for its total, and one refund per
  refunded order: no payment is captured twice.
A fixed scenario drives one order into each state, so the run provably reaches confirmed, shipped,
failed (declined and out of stock), expired and refunded whatever hypothesis draws; a second
machine runs batches of steps at the same moment from threads, each on a connection of its own
(with no preconditions: see Concurrent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from models.infra.db import db
from models.tables import Order
from tests.stock_machine import LATER, StockMachine

# What every run must have reached (the fixed scenario guarantees it; hypothesis often does too).
MUST_REACH = {
    "confirmed",
    "shipped",
    "delivered",
    "failed:payment_declined",
    "failed:out_of_stock",
    "expired",
    "cancelled",
    "refunded",
}

picks = st.integers(0, 30)
# Queued follow-ups mostly run oldest first, as a queue delivers them; sometimes one overtakes.
queue_picks = st.sampled_from([0, 0, 0, 1, -1])


# The steps hypothesis draws, as tuples: (kind, pick, argument, quick); an order step picks among
# the orders in the statuses of tests.stock_machine.ORDER_STEPS.
# Quick: the order's follow-ups run right after the step (a warm worker), so that runs reach the
# later states often; otherwise they wait in the outbox for a worker rule.
TOKENS = st.sampled_from(["tok_ok", "tok_ok", "tok_decline", "tok_error"])
slow = st.just(False)
STEPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "place": st.tuples(
        st.just("place"),
        st.integers(0, 1),
        st.tuples(st.integers(0, 1), st.integers(1, 3), st.integers(0, 2)),
        st.booleans(),
    ),
    "follow_up": st.tuples(st.just("follow_up"), queue_picks, st.none(), slow),
    "expire": st.tuples(st.just("expire"), st.none(), st.sampled_from(sorted(LATER)), slow),
    "redrive": st.tuples(st.just("redrive"), st.none(), st.none(), slow),
    "reserve": st.tuples(st.just("reserve"), picks, st.none(), slow),
    "pay": st.tuples(st.just("pay"), picks, TOKENS, st.booleans()),
    "cancel": st.tuples(st.just("cancel"), picks, st.booleans(), st.booleans()),
    "cancel_sold": st.tuples(st.just("cancel_sold"), picks, st.booleans(), st.booleans()),
    "ship": st.tuples(st.just("ship"), picks, st.none(), slow),
    "deliver": st.tuples(st.just("deliver"), picks, st.none(), slow),
    "refund": st.tuples(st.just("refund"), picks, st.none(), slow),
}


def having(*statuses: str) -> Callable[[StockMachine], bool]:
    """A precondition: some order is in one of these statuses (any order, if none are named)."""
    return lambda machine: any(not statuses or status in statuses for status in machine.statuses.values())


class Sequential(StockMachine):
    """One step at a time, in the order hypothesis picks."""

    @rule(step=STEPS["place"])
    def checkout(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(lambda machine: machine.outbox)
    @rule(step=STEPS["follow_up"])
    def a_worker_runs_a_task(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(lambda machine: machine.outbox)
    @rule()
    def the_workers_catch_up(self) -> None:
        self.drain(redrive=False)

    @precondition(having())
    @rule(step=STEPS["reserve"])
    def reserve(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(having("reserved"))
    @rule(step=STEPS["pay"])
    def pay(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(having())
    @rule(step=STEPS["cancel"])
    def cancel(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(having("confirmed"))
    @rule(step=STEPS["cancel_sold"])
    def cancel_after_payment(self, step: tuple[Any, ...]) -> None:
        """Cancelled once paid (before shipping): the stock goes back, the money must follow."""
        self.run_step(step)

    @precondition(having("reserved"))
    @rule(step=STEPS["expire"])
    def expire(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(having("confirmed"))
    @rule(step=STEPS["ship"])
    def ship(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(having("shipped"))
    @rule(step=STEPS["deliver"])
    def deliver(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @precondition(having())
    @rule(step=STEPS["refund"])
    def refund(self, step: tuple[Any, ...]) -> None:
        """A refund task delivered for any order (a duplicate, or one the re-drive sent)."""
        self.run_step(step)

    @precondition(having())
    @rule(step=STEPS["redrive"])
    def redrive_lost_messages(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)


# A batch of steps that race: weighted towards the ones that touch the same order's money and stock.
BATCH = st.lists(
    st.one_of(*STEPS.values(), STEPS["follow_up"], STEPS["follow_up"], STEPS["cancel"], STEPS["pay"]),
    min_size=2,
    max_size=4,
)


class Concurrent(StockMachine):
    """Single steps, and batches of them started at the same moment from threads, each with its
    own pooled connection (the web process's threadpool and the worker processes do the same).

    No rule here has a precondition: which racing step wins differs from one run of an example to
    the next, so the orders' statuses and the outbox do too, and a rule enabled by them would make
    hypothesis draw differently when it replays the example (FlakyStrategyDefinition). A drawn
    step that finds nothing to act on does nothing (`prepare` returns None)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="property")

    @rule(step=STEPS["place"])
    def checkout(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @rule(step=st.one_of(*STEPS.values()))
    def one_step(self, step: tuple[Any, ...]) -> None:
        self.run_step(step)

    @rule()
    def the_workers_catch_up(self) -> None:
        self.drain(redrive=False)

    @rule(batch=BATCH)
    def at_once(self, batch: list[tuple[Any, ...]]) -> None:
        self.race(batch)

    @rule(batch=BATCH)
    def at_once_again(self, batch: list[tuple[Any, ...]]) -> None:
        self.race(batch)

    def race(self, batch: list[tuple[Any, ...]]) -> None:
        calls = [call for call in map(self.prepare, batch) if call is not None]
        if not calls:
            return
        start = threading.Barrier(len(calls))

        def run(call: Callable[[], None]) -> None:
            with db.obj.connection_context():  # this thread's own connection, back to the pool after
                start.wait(timeout=30)
                call()

        for future in [self.pool.submit(run, call) for call in calls]:
            future.result(timeout=60)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            self.pool.shutdown(wait=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.pool.shutdown(wait=True)


def scenario(machine: StockMachine) -> None:
    """One order into each state the run must reach, checking everything after every step."""
    steps: list[Callable[[], Any]] = []

    def then(fn: Callable[..., Any], *args: Any) -> None:
        steps.append(lambda: fn(*args))

    orders: dict[str, int] = {}

    def place(name: str, lines: dict[int, int]) -> None:
        order_id = machine.place(0, lines)
        assert order_id is not None, f"the checkout refused the {name} order"
        orders[name] = order_id

    def each(fn: Callable[..., Any], name: str, *args: Any) -> None:
        then(lambda: fn(orders[name], *args))

    # sold, shipped, delivered
    then(place, "delivered", {0: 2})
    each(machine.follow_ups_of, "delivered")  # reserve, prepare the payment
    each(machine.pay_for, "delivered", "tok_ok")
    each(machine.follow_ups_of, "delivered")  # capture
    each(machine.ship_order, "delivered")
    each(machine.deliver_order, "delivered")
    # a transient gateway error, then the capture succeeds; cancelled after it was paid: refunded
    then(place, "refunded", {0: 1, 1: 1})
    each(machine.follow_ups_of, "refunded")
    each(machine.pay_for, "refunded", "tok_error")
    each(machine.follow_ups_of, "refunded")  # the capture fails once, is retried, and confirms
    each(machine.cancel_order, "refunded", True)  # stock back on the shelf, a refund due
    each(machine.follow_ups_of, "refunded")
    # declined: failed, stock released
    then(place, "declined", {1: 2})
    each(machine.follow_ups_of, "declined")
    each(machine.pay_for, "declined", "tok_decline")
    each(machine.follow_ups_of, "declined")
    # held until the reservation ran out
    then(place, "expired", {0: 1})
    each(machine.follow_ups_of, "expired")
    then(machine.expire_at, LATER["a day later"])
    each(machine.follow_ups_of, "expired")
    # two checkouts that each fit the 4 units left, reserved one after the other: the second fails
    # out of stock (a cart holding more than is left is refused at checkout already)
    then(place, "first", {0: 3})
    then(place, "short", {0: 3})
    each(machine.follow_ups_of, "first")
    each(machine.follow_ups_of, "short")
    for run in steps:
        run()
        machine.check()
    machine.finish()
    states = {name: Order.get_by_id(i).status for name, i in orders.items()}
    assert states == {
        "delivered": "delivered",
        "refunded": "cancelled",
        "declined": "failed",
        "expired": "expired",
        "first": "reserved",
        "short": "failed",
    }, states


# No shrinking: a replay costs a fresh shop and every step's queries, so shrinking a failure takes
# minutes (past pytest's time-out), and threads make the concurrent machine's failures unrepeatable
# step for step anyway. A failure is reported as found (at most stateful_step_count steps); the
# scenario above is the short reproduction of each path. Add Phase.shrink here to shrink locally.
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)


def explore(machine: type[StockMachine], budget: settings) -> set[str]:
    """Run the fixed scenario, then let hypothesis explore; returns the states hypothesis reached."""
    StockMachine.reached = set()
    scenario(machine())
    missing = MUST_REACH - StockMachine.reached
    assert not missing, f"the scenario no longer reaches {sorted(missing)}"
    StockMachine.reached = set()
    run_state_machine_as_test(machine, settings=budget)
    print(f"hypothesis reached {sorted(StockMachine.reached)}")
    return StockMachine.reached


def test_stock_is_conserved_one_step_at_a_time() -> None:
    explore(Sequential, settings(SETTINGS, max_examples=30, stateful_step_count=25))


def test_stock_is_conserved_with_steps_running_at_the_same_moment() -> None:
    explore(Concurrent, settings(SETTINGS, max_examples=15, stateful_step_count=15))
