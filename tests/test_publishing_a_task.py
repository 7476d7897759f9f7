"""What publishing a pipeline task costs: one write to the broker (and the task-sent event), with
nothing built or sent that nobody uses.

No result is ever read (task_ignore_result), so no publish may subscribe to the task's result
channel. Celery's `send_task` does unless told `ignore_result=True`, whatever task_ignore_result
says: a SUBSCRIBE and an UNSUBSCRIBE per task on a pub/sub connection each request thread keeps
open. And kombu built a new redis-py client object (0.2 ms of CPU) for each command a channel sent
outside its consumer: each publish, event and ack (tasks/broker.py)."""

from __future__ import annotations

from typing import Any

from models.infra.redis_client import get_redis
from models.tables import Product
from tests.support import checkout_body


def calls(*commands: str) -> int:
    """How many times the Redis server has run these commands (INFO commandstats)."""
    stats = get_redis().info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in commands)


def test_placing_an_order_publishes_its_task_without_subscribing_to_a_result(
    client: Any, user_headers: dict[str, str]
) -> None:
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=12000, stock_quantity=5, tags=[], images=[])
    client.post(
        "/api/v1/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "session-1"}
    )
    subscribed, pushed = calls("subscribe", "unsubscribe"), calls("lpush")

    placed = client.post(
        "/api/v1/orders",
        json=checkout_body(),
        headers={**user_headers, "X-Session-ID": "session-1", "Idempotency-Key": "key-00001"},
    )

    assert placed.status_code == 202, placed.text
    assert calls("lpush") > pushed  # its reserve_stock went onto the broker's queue (kombu LPUSHes)
    assert calls("subscribe", "unsubscribe") == subscribed


def test_a_broker_channel_sends_its_commands_through_one_client() -> None:
    from tasks.app import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.ping()
