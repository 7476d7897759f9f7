"""What an operator of the checkout watches, read from where it is already true for every process:
PostgreSQL (order transitions and payment outcomes from the order timeline, emails from the
email log, the oldest order still waiting) and Redis (queue depths; task outcomes, counted by
the workers: tasks/metrics.py). web/metrics.py turns a reading into Prometheus metrics at each
scrape, so the figures are the same whichever web process is scraped, and survive restarts."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.infra.db import db
from models.infra.redis_client import get_redis

TASK_COUNTS = "metrics:tasks"  # Redis hash: "<task name>|<outcome>" -> count
QUEUES = ("payments", "celery", "mail")
# kombu's Redis transport keeps a queue's prioritised messages in lists named queue + sep + step.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
PAYMENT_EVENTS = (
    "payment_captured",
    "payment_declined",
    "payment_refunded",
    "payment_voided",
    "payment_captured_after_close",
)


@dataclass
class Stats:
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)  # (from, to) -> count
    payments: dict[tuple[str, str], int] = field(default_factory=dict)  # (gateway, outcome) -> count
    emails: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count
    oldest_waiting: dict[str, float] = field(default_factory=dict)  # what it waits for -> seconds
    queues: dict[str, int] = field(default_factory=dict)  # queue -> messages waiting
    tasks: dict[tuple[str, str], int] = field(default_factory=dict)  # (task, outcome) -> count
    up: dict[str, bool] = field(default_factory=dict)  # source -> read


def _from_database(stats: Stats) -> None:
    with db.obj.connection_context():
        sql = db.obj.execute_sql
        for from_status, to_status, count in sql(
            "SELECT coalesce(from_status, ''), to_status, count(*) FROM order_events "
            "WHERE to_status IS NOT NULL GROUP BY 1, 2"
        ):
            stats.transitions[(from_status, to_status)] = count
        for gateway, event, count in sql(
            "SELECT o.payment_gateway, e.type, count(*) FROM order_events e JOIN orders o ON o.id = e.order_id "
            "WHERE e.type IN %s GROUP BY 1, 2",
            (PAYMENT_EVENTS,),
        ):
            stats.payments[(gateway, event.removeprefix("payment_"))] = count
        for kind, status, count in sql("SELECT kind, status, count(*) FROM email_log GROUP BY 1, 2"):
            stats.emails[(kind, status)] = count
        pending, paying = sql(
            "SELECT coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0), "
            "coalesce(extract(epoch FROM now() - min(payment_submitted_at) "
            "FILTER (WHERE status = 'reserved' AND payment_submitted_at IS NOT NULL)), 0) FROM orders "
            "WHERE status IN ('pending', 'reserved')"
        ).fetchone()
        stats.oldest_waiting = {"reservation": float(pending), "capture": float(paying)}


def _from_redis(stats: Stats) -> None:
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    for queue in QUEUES:
        for suffix in PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    pipe.hgetall(TASK_COUNTS)
    *lengths, tasks = pipe.execute()
    for index, queue in enumerate(QUEUES):
        stats.queues[queue] = sum(lengths[index * len(PRIORITY_SUFFIXES) : (index + 1) * len(PRIORITY_SUFFIXES)])
    for key, count in tasks.items():
        name, _, outcome = key.rpartition("|")
        stats.tasks[(name, outcome)] = int(count)


def read() -> Stats:
    """One reading; a source that cannot be read is marked down and left out (never raises)."""
    stats = Stats()
    for source, reader in (("database", _from_database), ("redis", _from_redis)):
        try:
            reader(stats)
            stats.up[source] = True
        except Exception:
            stats.up[source] = False
    return stats


def count_task(name: str, outcome: str) -> None:
    """A worker counts one finished task run: succeeded, failed or retried."""
    get_redis().hincrby(TASK_COUNTS, f"{name}|{outcome}", 1)
