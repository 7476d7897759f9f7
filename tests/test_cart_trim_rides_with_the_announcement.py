"""A paid order's cart trim (RemoveOrderedFromCart) is a Redis script that the dispatcher runs in the
same round trip as the order's fence close and its announcement, before them (tasks/dispatch.py,
step 3): a long poll woken by `confirmed` finds the cart already trimmed, one round trip sooner.
A trim that fails there (or a Redis that cannot be reached) is enqueued as its task, and the
announcement still goes out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.connection import AbstractConnection

from models import events
from models.cart import store as cart
from models.infra import fences
from models.infra.redis_client import get_redis
from models.orders import states
from tasks.dispatch import handle
from tests.test_checkout_pipeline_flow import tasks_published

SESSION = "session-trimmed-with-the-news"


HANDSHAKE = (b"HELLO", b"PING", b"CLIENT", b"SELECT", b"AUTH")  # a new pooled connection's own


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """What this thread's redis-py sends to the real Redis, one packed send per command or
    pipeline, but for the handshake of a connection the pool opens meanwhile."""
    sent: list[bytes] = []
    real = AbstractConnection.send_packed_command
    this_thread = threading.get_ident()  # not another thread's (a live server's subscription)

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        packed = b"".join(command) if isinstance(command, list) else bytes(command)
        if threading.get_ident() == this_thread and packed.split(b"\r\n")[2] not in HANDSHAKE:
            sent.append(packed)
        real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    yield sent
    monkeypatch.setattr(AbstractConnection, "send_packed_command", real)


def confirmed(order_id: int) -> list[events.Message]:
    """What confirm_paid emits for an order that bought 2 of product 7 from SESSION's cart."""
    key = states.fence_key(order_id)
    fences.open(key)
    return [
        events.FenceOpened(key),
        events.OrderChanged(order_id, None),
        events.RemoveOrderedFromCart(order_id, SESSION, ((7, 2),), f"ORD-20261201-T{order_id:07d}"),
    ]


def listening() -> Any:
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(states.STATUS_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscription's own reply
    return pubsub


def announced(pubsub: Any, order_id: int) -> bool:
    """Whether the order's announcement arrives within a second (the channel is every database's)."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message and message["data"] == str(order_id):
            return True
    return False


def test_the_trim_goes_with_the_fence_and_the_announcement(monkeypatch: pytest.MonkeyPatch) -> None:
    get_redis().hset(cart.cart_key(SESSION), mapping={"7": 2, "8": 1})
    messages = confirmed(41)
    pubsub = listening()
    try:
        with round_trips(monkeypatch) as sent, tasks_published() as published:
            handle(messages)
        heard = announced(pubsub, 41)
    finally:
        pubsub.close()
    assert len(sent) == 1, sent  # the trim, the fence's close and the announcement together
    assert sent[0].index(b"cart-ordered:ORD-20261201-T0000041") < sent[0].index(b"PUBLISH")
    assert published == []
    assert heard
    assert cart.get_quantities(SESSION) == {8: 1}
    assert get_redis().exists(states.fence_key(41) + fences.PENDING) == 0  # the fence's writer is done


def test_a_trim_that_fails_is_enqueued_and_the_order_still_announced() -> None:
    get_redis().set(cart.cart_key(SESSION), "not a hash")  # HGET on it fails inside the script
    messages = confirmed(42)
    pubsub = listening()
    try:
        with tasks_published() as published:
            handle(messages)
        heard = announced(pubsub, 42)
    finally:
        pubsub.close()
    assert published == ["pipeline.remove_ordered_from_cart"]
    assert heard
    assert get_redis().exists(states.fence_key(42) + fences.PENDING) == 0
