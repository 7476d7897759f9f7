"""Publishing a pipeline task to a Redis broker in one round trip, with Celery's own message.

`Celery.send_task` cost about 1 ms of CPU per publish here, against 0.3 ms for this: the message
(headers, properties, body, task-sent event) is still built by Celery (`create_task_message`),
but kombu's producer, its connection pool, its retry wrapper, its check that the queue is
declared, and the second round trip for the task-sent event are not used. The message is LPUSHed
and the event PUBLISHed in one pipeline, as kombu's Redis transport writes them:

- the envelope: the body as base64 of its JSON, the task's headers, and Celery's properties with
  the delivery info kombu adds (`delivery_mode` 2, exchange "" with the queue as routing key,
  priority 0, so the queue's own list);
- the event: on the `celeryev` fanout channel (`/<db>.celeryev/task.sent`), as Celery's event
  dispatcher and kombu would send it, so Flower sees the task as sent;
- Celery's `before_task_publish` and `after_task_publish` signals are sent as `send_task` sends
  them (a receiver may add headers, as tracing does).

`tests/test_publisher_writes_what_celery_writes.py` publishes one task both ways and compares
what lands in Redis, field by field: an upgrade of Celery or kombu that changes either is caught
there. Any other broker (RabbitMQ, TLS, a unix socket), and any task or route that asks for
more than a queue (a priority, an expiry, another serializer), goes through `send_task`.

A failed write (Redis unreachable) is retried as task_publish_retry_policy says, then raised."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any

import redis
from celery import Celery, signals
from celery.events.event import Event
from celery.utils.time import utcoffset
from kombu.entity import maybe_delivery_mode
from kombu.utils.json import dumps

from models.infra.redis_client import reconnecting

_PRIORITY = 0  # kombu's default: the message goes to the queue's own list, not a priority step
# Transport options that change where kombu writes: with any of them set, send_task publishes.
_LAYOUT_OPTIONS = ("global_keyprefix", "fanout_prefix", "fanout_patterns", "priority_steps", "sep")


def _json(value: Any) -> str:
    return str(dumps(value))  # type: ignore[no-untyped-call]  # kombu's JSON, as its transport writes


def _delivery_mode(mode: int | str | None) -> int:
    return int(maybe_delivery_mode(mode))  # type: ignore[no-untyped-call]  # 1 transient, 2 persistent


def _asks_for_more(queue: Any) -> bool:
    """Whether a kombu Queue asks for anything beyond its own list (priorities, expiry, ...)."""
    return bool(
        queue.queue_arguments
        or queue.max_priority
        or queue.expires
        or queue.message_ttl
        or (queue.exchange is not None and queue.exchange.delivery_mode)
    )


class Publisher:
    """Publishes tasks of one Celery app to its Redis broker (`send`), or through `send_task` when
    the broker is not Redis."""

    def __init__(self, app: Celery, broker_url: str | None = None) -> None:
        self.app = app
        self.url = broker_url or app.conf.broker_url
        scheme = self.url.split("://", 1)[0]
        options = app.conf.broker_transport_options or {}
        self.lean = scheme == "redis" and not any(name in options for name in _LAYOUT_OPTIONS)
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def client(self) -> redis.Redis:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    options = self.app.conf.broker_transport_options or {}
                    self._client = redis.Redis.from_url(
                        self.url,
                        socket_timeout=options.get("socket_timeout", 5),
                        socket_connect_timeout=options.get("socket_connect_timeout", 5),
                        **reconnecting(),
                    )
        return self._client

    def send(self, name: str, kwargs: dict[str, Any], shadow: str | None = None) -> str:
        """Publish task `name` with `kwargs`; returns its task id. Its result is never stored."""
        options = self._options(name, kwargs) if self.lean else None
        if options is None:
            return str(self.app.send_task(name, kwargs=kwargs, shadow=shadow, ignore_result=True).id)
        app, amqp = self.app, self.app.amqp
        declared, time_limit, soft_time_limit = options
        queue = declared.name
        task_id = str(uuid.uuid4())
        root_id = parent_id = None
        parent = app.current_worker_task
        if parent is not None:  # a task published by a task: Celery links it to its parent
            root_id = parent.request.root_id or parent.request.id
            parent_id = parent.request.id
        headers, properties, body, sent_event = amqp.create_task_message(
            task_id,
            name,
            (),
            kwargs,
            None,  # countdown
            None,  # eta
            None,  # group_id
            None,  # group_index
            None,  # expires
            0,  # retries
            None,  # chord
            None,  # callbacks
            None,  # errbacks
            app.thread_oid,  # reply_to, as send_task sets it
            time_limit,
            soft_time_limit,
            app.conf.task_send_sent_event,
            root_id,
            parent_id,
            shadow,
            None,  # chain
            ignore_result=True,
        )
        policy = self._policy()
        # Celery's publish signals, as send_task sends them (a receiver may add headers: tracing).
        signals.before_task_publish.send(
            sender=name,
            body=body,
            exchange="",
            routing_key=queue,
            declare=[declared],
            headers=headers,
            properties=properties,
            retry_policy=policy,
        )
        envelope = {
            "body": base64.b64encode(_json(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": _delivery_mode(app.conf.task_default_delivery_mode),
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": _PRIORITY,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        writes: list[tuple[str, str, str]] = [("lpush", queue, _json(envelope))]
        if sent_event is not None:
            writes.append(self._sent_event(sent_event, queue))
        self._write(writes, policy)
        signals.after_task_publish.send(sender=name, body=body, headers=headers, exchange="", routing_key=queue)
        return task_id

    def _options(self, name: str, kwargs: dict[str, Any]) -> tuple[Any, Any, Any] | None:
        """The queue and time limits send_task would give this task (its own options where this
        process has it registered, as a worker does, then the routes), or None when it would set
        something written here differently (a priority, an expiry, another serializer...)."""
        task = self.app._tasks.get(name)
        options = {k: v for k, v in task._get_exec_options().items() if v is not None} if task else {}
        time_limit, soft_time_limit = options.pop("time_limit", None), options.pop("soft_time_limit", None)
        options = self.app.amqp.router.route(options, name, (), kwargs, task)
        queue = options.pop("queue", None)
        if options.pop("serializer", "json") != "json" or options or queue is None or _asks_for_more(queue):
            return None
        return queue, time_limit, soft_time_limit

    def _sent_event(self, fields: dict[str, Any], queue: str) -> tuple[str, str, str]:
        """The task-sent event as Celery's dispatcher sends it, for a PUBLISH on the fanout channel."""
        dispatcher = self.app.amqp._event_dispatcher
        fields.update(queue=queue, exchange="", routing_key=queue)
        event = Event(
            "task-sent",
            hostname=dispatcher.hostname,
            utcoffset=utcoffset(),
            pid=dispatcher.pid,
            clock=dispatcher.clock.forward(),
            **fields,
        )
        exchange = dispatcher.exchange.name
        envelope = {
            "body": base64.b64encode(_json(event).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": dispatcher.headers,
            "properties": {
                "delivery_mode": _delivery_mode(dispatcher.delivery_mode),
                "delivery_info": {"exchange": exchange, "routing_key": "task.sent"},
                "priority": _PRIORITY,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        # kombu prefixes fanout channels with the database number (its fanout_prefix option).
        db = self.client().connection_pool.connection_kwargs.get("db", 0)
        return ("publish", f"/{db}.{exchange}/task.sent", _json(envelope))

    def _policy(self) -> dict[str, Any]:
        return dict(self.app.conf.task_publish_retry_policy) if self.app.conf.task_publish_retry else {}

    def _write(self, writes: list[tuple[str, str, str]], policy: dict[str, Any]) -> None:
        # kombu's defaults where the policy is silent (celery/app/amqp.py passes the same).
        retries = int(policy.get("max_retries", 0) or 0)
        interval = float(policy.get("interval_start", 0))
        step, most = float(policy.get("interval_step", 0.2)), float(policy.get("interval_max", 1))
        for attempt in range(retries + 1):
            try:
                pipe = self.client().pipeline(transaction=False)
                for command, key, value in writes:
                    getattr(pipe, command)(key, value)
                pipe.execute()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if attempt == retries:
                    raise
                time.sleep(interval)
                interval = min(interval + step, most)
