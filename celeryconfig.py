"""Celery settings for a payment pipeline: JSON only, late acks, one message at a time per process."""

from __future__ import annotations

from kombu import Queue

from models.infra.settings import get_settings
from tasks.broker import install as _install_transport

_settings = get_settings()

broker_url = _settings.broker_url
# The stock Redis transport, with clients that replace connections a Redis restart closed.
_install_transport()
# Tasks never wait on each other, and every outcome lands in PostgreSQL, so results are not kept:
# storing them would also make each publish touch the result store (and stall when Redis is
# down). A caller that wants one (the tests) asks with apply_async(ignore_result=False).
task_ignore_result = True
result_backend = _settings.broker_url
result_expires = 3600

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# A task is acknowledged after it finishes, and requeued if its worker dies mid-task: every task
# is idempotent, so running twice is safe, while losing one would strand an order.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = 60
task_soft_time_limit = 45
# Money first: a shopper waiting on "pay" is served before reservations, both before email, and
# email before asking carriers where parcels are. Every worker consumes all four queues (no -Q
# needed), always taking from the first non-empty one, so a burst of checkouts or a backlog of mail
# or tracking never delays a capture or a refund.
task_queues = tuple(Queue(name, routing_key=name) for name in ("payments", "celery", "mail", "tracking"))
task_default_queue = "celery"
task_routes = {
    "pipeline.capture_payment": {"queue": "payments"},
    "pipeline.refund_payment": {"queue": "payments"},
    "pipeline.void_payment": {"queue": "payments"},
    "pipeline.authorize_payment": {"queue": "payments"},
    "pipeline.reconcile_payment": {"queue": "payments"},
    "pipeline.send_order_email": {"queue": "mail"},
    "pipeline.remove_ordered_from_cart": {"queue": "mail"},
    "pipeline.low_stock_alert": {"queue": "mail"},
    "pipeline.send_cart_reminder": {"queue": "mail"},
    "tracking.poll_shipment": {"queue": "tracking"},
}
# Redis redelivers an unacknowledged message after this long; it must exceed the longest task.
broker_transport_options = {
    "visibility_timeout": _settings.celery_visibility_timeout,
    # How often a worker looks for messages whose worker died unacknowledged (interval x throttle).
    "unacked_restore_interval": _settings.celery_unacked_restore_interval,
    "unacked_restore_throttle": _settings.celery_unacked_restore_throttle,
    # Workers take from the queues in the order of task_queues above, not round robin.
    "queue_order_strategy": "priority",
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
broker_connection_retry_on_startup = True
broker_connection_timeout = 5
# Publishing after commit must not hang a web request when Redis is down: fail fast, the
# re-drive beat job publishes again later.
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# Flower sees every task with its arguments.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True

worker_hijack_root_logger = False
# A pool process is replaced when its memory passes this (KiB, checked after each task), not
# after a count of tasks: each replacement leaves the pool a process short until Celery's pool
# maintenance (every 5 s) notices, and a task can wait that long (README, "Where the time goes").
worker_max_tasks_per_child = None
worker_max_memory_per_child = 400_000

# Beat: exactly one beat process per deployment.
beat_schedule: dict[str, dict[str, object]] = {
    "expire-reservations": {"task": "beat.expire_reservations", "schedule": 30.0},
    "redrive-stuck-orders": {"task": "beat.redrive_stuck_orders", "schedule": 15.0},
    "reconcile-payments": {"task": "beat.reconcile_payments", "schedule": 60.0},
    "sweep-abandoned-carts": {"task": "beat.sweep_abandoned_carts", "schedule": 3600.0},
    # Claims the shipments whose next poll is due (each is TRACKING_POLL_INTERVAL apart, jittered).
    "poll-shipments": {"task": "beat.poll_shipments", "schedule": 60.0},
    "prune-used-refresh-tokens": {"task": "beat.prune_used_refresh_tokens", "schedule": 3600.0},
}
