"""The web process's subscriptions stop cleanly whenever the app shuts down, even when the
shutdown lands while redis-py is still connecting (where it can swallow a cancellation), and a
PostgreSQL LISTEN connection that drops leaves no reader behind on the event loop."""

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


def test_a_dropped_listen_connection_leaves_no_reader_on_a_closed_descriptor() -> None:
    """When PostgreSQL drops the LISTEN connection, the listener unregisters the descriptor it
    registered: asking the closed connection for its fileno() raises, and a reader left on that
    number would capture whichever socket (an HTTP client's) gets it next, never to be served."""
    from models.infra.db import db
    from web.subscriptions import PgSubscription

    def terminate() -> int:
        with db.obj.connection_context():
            (killed,) = db.obj.execute_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query = %s AND datname = current_database()",
                ('LISTEN "test_fd_channel"',),
            ).fetchone()
        return int(killed)

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        watched_before = set(loop._selector.get_map())  # type: ignore[attr-defined]
        gaps: list[int] = []
        subscription = PgSubscription("test_fd_channel", lambda _payload: None, on_gap=lambda: gaps.append(1))
        subscription.start()
        await asyncio.to_thread(wait_for, subscription.subscribed.is_set, what="the LISTEN")
        assert await asyncio.to_thread(terminate) == 1
        await asyncio.to_thread(wait_for, lambda: len(gaps) >= 2, what="the dropped connection to be noticed")
        await subscription.stop()
        # Stopped, the listener leaves nothing watched: no reader on the dropped connection's number.
        return [fd for fd in loop._selector.get_map() if fd not in watched_before]  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == []
