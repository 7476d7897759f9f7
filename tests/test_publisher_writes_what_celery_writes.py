"""The dispatcher publishes pipeline tasks itself (tasks/publisher.py: one round trip, a third of
the CPU of `Celery.send_task`), so what it writes must stay what Celery and kombu would write:
the same task message on the same queue's list, and the same task-sent event on the same fanout
channel, field by field. An upgrade of Celery or kombu that changes either fails here."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery._state import _task_stack
from kombu.utils.url import url_to_parts

import tasks.pipeline  # noqa: F401  (registers the pipeline's tasks, as in a worker)
from models.infra.redis_client import get_redis_url
from tasks.app import app
from tasks.publisher import Publisher

DB = 15  # a database of the suite's Redis that no worker consumes


@pytest.fixture
def broker() -> Iterator[str]:
    parts = url_to_parts(get_redis_url())
    url = f"redis://{parts.hostname}:{parts.port}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


def decoded(raw: bytes) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(raw)
    envelope["body"] = json.loads(base64.b64decode(envelope["body"]))
    return envelope


def written(url: str, send: Callable[[], object], queue: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task message `send` left on `queue` and the task-sent event it published."""
    client = redis.Redis.from_url(url)
    events = client.pubsub()
    events.subscribe(f"/{DB}.celeryev/task.sent")
    assert events.get_message(timeout=5)["type"] == "subscribe"
    send()
    assert client.llen(queue) == 1
    message = decoded(client.rpop(queue))
    event = events.get_message(timeout=5)
    events.close()
    assert event is not None and event["type"] == "message", "no task-sent event"
    return message, decoded(event["data"])


# What differs from one publish to the next: ids, times, the event clock.
PER_PUBLISH = {
    ("headers", "id"),
    ("headers", "root_id"),
    ("properties", "correlation_id"),
    ("properties", "delivery_tag"),
    ("body", "uuid"),
    ("body", "root_id"),
    ("body", "timestamp"),
    ("body", "clock"),
}


def fixed(envelope: dict[str, Any]) -> dict[str, Any]:
    return {
        part: {k: v for k, v in value.items() if (part, k) not in PER_PUBLISH} if isinstance(value, dict) else value
        for part, value in envelope.items()
    }


def both_ways(url: str, name: str, kwargs: dict[str, Any], shadow: str) -> list[tuple[dict[str, Any], ...]]:
    queue = app.amqp.router.route({}, name, (), kwargs)["queue"].name
    with app.connection_for_write(url) as connection:
        celery = written(
            url,
            lambda: app.send_task(name, kwargs=kwargs, shadow=shadow, ignore_result=True, connection=connection),
            queue,
        )
    ours = written(url, lambda: Publisher(app, url).send(name, kwargs, shadow=shadow), queue)
    return [celery, ours]


def test_a_task_message_and_its_sent_event_are_what_celery_writes(broker: str) -> None:
    (celery_message, celery_event), (message, event) = both_ways(
        broker, "pipeline.capture_payment", {"order_id": 7}, "pipeline.capture_payment ORD-7"
    )

    assert fixed(message) == fixed(celery_message)
    assert fixed(event) == fixed(celery_event)
    assert message["properties"]["delivery_info"] == {"exchange": "", "routing_key": "payments"}
    assert message["body"][1] == {"order_id": 7}
    # A task nobody published from another task is its own root, in the message and the event.
    assert message["headers"]["root_id"] == message["headers"]["id"] == message["properties"]["correlation_id"]
    assert (
        event["body"]["uuid"] == message["headers"]["id"] and event["body"]["name"] == "pipeline.capture_payment ORD-7"
    )


def test_a_task_published_by_a_task_names_its_parent_as_celery_does(broker: str) -> None:
    parent = app.tasks["pipeline.capture_payment"]
    parent.push_request(id="capture-task-id", root_id="reserve-task-id", called_directly=False)
    _task_stack.push(parent)
    try:
        (celery_message, celery_event), (message, event) = both_ways(
            broker, "pipeline.send_order_email", {"order_id": 7, "kind": "confirmation"}, "email ORD-7"
        )
    finally:
        _task_stack.pop()
        parent.pop_request()

    assert fixed(message) == fixed(celery_message) and fixed(event) == fixed(celery_event)
    assert message["properties"]["delivery_info"]["routing_key"] == "mail"
    for headers in (message["headers"], celery_message["headers"]):
        assert (headers["parent_id"], headers["root_id"]) == ("capture-task-id", "reserve-task-id")
