"""The web process's Redis subscriptions stop cleanly whenever the app shuts down, even when the
shutdown lands while redis-py is still connecting (where it can swallow a cancellation)."""

from __future__ import annotations

import asyncio

from models.infra.redis_client import get_redis
from tests.support import wait_for
from web.subscriptions import Subscription


def test_stop_ends_the_listener_at_any_point_of_its_start() -> None:
    async def start_then_stop(steps: int) -> bool:
        subscription = Subscription("test-channel", lambda _data: None)
        subscription.start()
        for _ in range(steps):  # land the stop at each await of connecting and subscribing
            await asyncio.sleep(0)
        await asyncio.wait_for(subscription.stop(), timeout=5)
        return not [t for t in asyncio.all_tasks() if t.get_name() == "subscription:test-channel"]

    for steps in range(30):
        assert asyncio.run(start_then_stop(steps)), f"listener still running after stop at step {steps}"


def test_messages_reach_the_callback_until_stopped() -> None:
    received: list[bytes] = []

    async def scenario() -> None:
        subscription = Subscription("test-channel", received.append)
        subscription.start()
        await asyncio.to_thread(wait_for, subscription.subscribed.is_set, what="the subscription")
        get_redis().publish("test-channel", "hello")
        await asyncio.to_thread(wait_for, lambda: received == [b"hello"], what="the message")
        await subscription.stop()
        assert not subscription.subscribed.is_set()

    asyncio.run(scenario())
