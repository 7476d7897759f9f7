"""Typed follow-ups: what a domain step decided must happen once its transaction has committed.

A step emits them (`emit(CapturePayment(order_id))`) instead of calling Celery or Redis itself;
the door that ran the step collects them (`collecting()`) and, after the commit, hands them to the
one dispatcher (`tasks.dispatch.handle`). A step whose transaction raised emits nothing that
survives: the collector is dropped with the exception.

Two kinds: an `Event` says what happened (an order changed: wake its long polls), a `Command`
says what must run next (reserve stock, capture, send an email). Every field is a plain id or
string, so a command is also the keyword arguments of the task that carries it out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    def fields(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event(Message):
    """Something that happened."""


@dataclass(frozen=True)
class Command(Message):
    """Something that must run next, once, somewhere (inline or on a worker)."""


# ------------------------------------------------------------------------------------------ events
@dataclass(frozen=True)
class OrderChanged(Event):
    """An order's row (and version) changed: long polls on it may answer. `announcement`, when the
    step wrote the row through models.orders.states.touch: its status row as committed and the
    fence counter it is current under (models/orders/states.announcement), so that a web process
    can answer its long polls without reading it back."""

    order_id: int
    announcement: str = ""


@dataclass(frozen=True)
class FenceOpened(Event):
    """The step opened a change fence (models/infra/fences.py) inside its transaction: the door
    closes it once the transaction has ended, committed or rolled back."""

    key: str


# ---------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class ReserveStock(Command):
    order_id: int


@dataclass(frozen=True)
class PreparePayment(Command):
    """Ask the gateway for what the client needs to pay (next_action) once stock is held."""

    order_id: int


@dataclass(frozen=True)
class CapturePayment(Command):
    order_id: int


@dataclass(frozen=True)
class VoidPayment(Command):
    order_id: int


@dataclass(frozen=True)
class RefundPayment(Command):
    order_id: int


@dataclass(frozen=True)
class ReconcilePayment(Command):
    """Bring the order in line with the gateway's own view (a webhook's hint, the reconciliation
    beat): forward only, so an event that arrives late or twice can never move an order back."""

    order_id: int


@dataclass(frozen=True)
class SendOrderEmail(Command):
    order_id: int
    kind: str


@dataclass(frozen=True)
class AlertLowStock(Command):
    """A stock change took the product to or under its low-stock threshold from above it: one email
    per such crossing (entry_id: the ledger row of the crossing; None from older senders: one a day)."""

    product_id: int
    entry_id: int | None = None


@dataclass(frozen=True)
class SendCartReminder(Command):
    """Remind a signed-in customer of the cart they left (once per cart)."""

    session_id: str
    user_id: int


@dataclass(frozen=True)
class PollShipment(Command):
    """Ask the carrier where a shipped order is (models/shipping/tracking.py)."""

    order_id: int


@dataclass(frozen=True)
class RemoveOrderedFromCart(Command):
    """Take what a paid order bought out of the cart it came from (lines added since stay), once:
    the order's number (unique for good, unlike an id that a restored backup can hand out again)
    names its "lines removed" marker."""

    order_id: int
    session_id: str
    lines: tuple[tuple[int, int], ...]  # (product_id, quantity)
    order_number: str


# ------------------------------------------------------------------------------------- collecting
_collector: ContextVar[list[Message] | None] = ContextVar("shop_events", default=None)


class NoCollector(RuntimeError):
    """A step emitted a follow-up outside `collecting()`: it would have been lost."""


def emit(*messages: Message) -> None:
    """Record follow-ups of the running step; raises NoCollector outside `collecting()`."""
    collected = _collector.get()
    if collected is None:
        raise NoCollector(f"{messages!r} emitted outside events.collecting(): run steps through a door")
    collected.extend(messages)


@contextmanager
def collecting() -> Iterator[list[Message]]:
    """Collect what the steps run inside emit; the list is yours only if the block did not raise."""
    collected: list[Message] = []
    token = _collector.set(collected)
    try:
        yield collected
    finally:
        _collector.reset(token)
