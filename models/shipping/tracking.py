"""Shipping updates: ask the carrier (through Sweet Tracker) where each shipped order is, record
each new scan once on the order's timeline, and turn `shipped` into `delivered` when the carrier
reports delivery.

The load is spread three ways: each shipment has its own next poll time, TRACKING_POLL_INTERVAL
apart with +-10% jitter (shipments shipped together drift apart); the beat job claims at most
CLAIM_LIMIT due shipments a tick (FOR UPDATE SKIP LOCKED, so two beats never claim the same one)
and hands each to its own task; a claimed shipment is leased for LEASE, so a lost task is
retried after that. A failed poll backs off (the interval, doubled per consecutive failure, at
most MAX_BACKOFF); polling stops at delivery, when the order leaves `shipped`, or MAX_AGE after
shipping (then the shipment counts as failing). A carrier error or timeout never touches the
order: it is recorded on the shipment only, and the shipment is retried later.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import Expression, fn

from models import events
from models.events import PollShipment, SendOrderEmail
from models.infra.db import db
from models.infra.settings import get_settings
from models.orders.states import DELIVERED, SHIPPED, lock, touch, transition
from models.shipping import sweettracker
from models.tables import TRACKING_EVENT, Order, OrderEvent, Shipment, utcnow

log = logging.getLogger("shop.tracking")
CLAIM_LIMIT = 200
LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=12)
MAX_AGE = timedelta(days=14)
FAILING_AFTER = 3  # consecutive failed polls before operators see the shipment as failing
REQUEST_TIMEOUT = 10.0  # seconds; the task's own limit is 45


def _jitter(seconds: float) -> timedelta:
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def start(order: Order, now: datetime | None = None) -> None:
    """Begin tracking a just-shipped order (inside the shipping transaction). The first poll comes
    within one interval, at a random point, so a batch shipped at once is not polled at once."""
    now = now or utcnow()
    first = now + timedelta(seconds=get_settings().tracking_poll_interval * random.uniform(0.1, 1.0))
    (
        Shipment.insert(order=order.id, level=0, delivered=False, failures=0, next_poll_at=first, created_at=now)
        .on_conflict(
            conflict_target=[Shipment.order],
            update={Shipment.next_poll_at: first, Shipment.failures: 0, Shipment.stopped_reason: None},
        )
        .execute()
    )


def stop(order_id: int, reason: str) -> None:
    Shipment.update(next_poll_at=None, stopped_reason=reason).where(
        Shipment.order == order_id, Shipment.next_poll_at.is_null(False)
    ).execute()


def claim_due(now: datetime | None = None, limit: int = CLAIM_LIMIT) -> list[int]:
    """Lease the shipments due now and emit one PollShipment each; returns their order ids. Without
    SWEETTRACKER_API_BASE and _KEY nothing is claimed: shipments wait, due, until it is configured."""
    settings = get_settings()
    if not settings.sweettracker_api_base or not settings.sweettracker_api_key:
        log.debug("tracking is not configured (SWEETTRACKER_API_BASE, SWEETTRACKER_API_KEY): nothing polled")
        return []
    now = now or utcnow()
    rows = db.obj.execute_sql(
        "UPDATE shipments SET next_poll_at = %s WHERE order_id IN ("
        " SELECT order_id FROM shipments WHERE next_poll_at <= %s ORDER BY next_poll_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED) RETURNING order_id",
        (now + LEASE, now, limit),
    ).fetchall()
    order_ids = sorted(order_id for (order_id,) in rows)
    if order_ids:
        events.emit(*(PollShipment(order_id) for order_id in order_ids))
    return order_ids


@dataclass(frozen=True)
class PollResult:
    outcome: str  # recorded | unchanged | delivered | failed | stopped | gave_up
    new_events: int = 0
    error: str | None = None


def poll(order_id: int, now: datetime | None = None, task_id: str | None = None) -> PollResult:
    """Ask the carrier about one shipment and apply the answer. The carrier is called outside any
    transaction; the answer is applied in one, under the order's lock."""
    now = now or utcnow()
    row = (
        Order.select(Order.status, Order.carrier, Order.tracking_number, Order.shipped_at)
        .where(Order.id == order_id)
        .first()
    )
    if row is None or row.status != SHIPPED or not row.carrier or not row.tracking_number:
        stop(order_id, "delivered" if row is not None and row.status == DELIVERED else "closed")
        return PollResult("stopped")
    settings = get_settings()
    try:
        report = sweettracker.fetch(
            settings.sweettracker_api_base,
            settings.sweettracker_api_key,
            row.carrier,
            row.tracking_number,
            timeout=REQUEST_TIMEOUT,
        )
    except sweettracker.TrackingError as exc:
        return _failed(order_id, row.shipped_at, now, exc)
    return _apply(order_id, row.shipped_at, report, now, task_id)


def _give_up(shipped_at: datetime | None, now: datetime) -> bool:
    return shipped_at is not None and now - shipped_at > MAX_AGE


def _failed(order_id: int, shipped_at: datetime | None, now: datetime, exc: sweettracker.TrackingError) -> PollResult:
    level = logging.ERROR if isinstance(exc, sweettracker.TrackingKeyRejected) else logging.WARNING
    log.log(level, "tracking order %s failed: %s", order_id, exc, extra={"order_id": order_id, "code": exc.code})
    with db.atomic():
        shipment = Shipment.select().where(Shipment.order == order_id).for_update().first()
        if shipment is None:
            return PollResult("stopped")
        failures = shipment.failures + 1
        interval = get_settings().tracking_poll_interval * 2 ** min(failures - 1, 16)
        delay = min(_jitter(interval), MAX_BACKOFF)
        gave_up = _give_up(shipped_at, now)
        Shipment.update(
            failures=failures,
            last_error=str(exc)[:200],
            last_polled_at=now,
            next_poll_at=None if gave_up else now + delay,
            stopped_reason="gave_up" if gave_up else None,
        ).where(Shipment.order == order_id).execute()
    return PollResult("gave_up" if gave_up else "failed", error=exc.code)


def _apply(
    order_id: int, shipped_at: datetime | None, report: sweettracker.TrackingReport, now: datetime, task_id: str | None
) -> PollResult:
    with db.atomic():
        order = lock(order_id)
        if order.status != SHIPPED:
            stop(order_id, "delivered" if order.status == DELIVERED else "closed")
            return PollResult("stopped")
        new = _record_new(order, report, task_id)
        changes = {
            "level": report.level,
            "status_text": (report.status_text or "")[:64] or None,
            "delivered": report.delivered,
            "failures": 0,
            "last_error": None,
            "last_polled_at": now,
            "last_success_at": now,
        }
        if report.delivered:
            delivered_at = next((e.at for e in reversed(report.events) if e.level >= 6), now)
            transition(
                order,
                DELIVERED,
                "order_delivered",
                {"by": "carrier", "at": delivered_at.isoformat()},
                task_id,
                delivered_at=delivered_at,
            )
            Shipment.update(**changes, next_poll_at=None, stopped_reason="delivered").where(
                Shipment.order == order_id
            ).execute()
            events.emit(SendOrderEmail(order.id, "delivered"))
            return PollResult("delivered", new)
        if new:
            touch(order)  # the order's page changed (its tracking): a new ETag
        gave_up = _give_up(shipped_at, now)
        next_poll = None if gave_up else now + _jitter(get_settings().tracking_poll_interval)
        Shipment.update(**changes, next_poll_at=next_poll, stopped_reason="gave_up" if gave_up else None).where(
            Shipment.order == order_id
        ).execute()
    return PollResult("gave_up" if gave_up else "recorded" if new else "unchanged", new)


def _record_new(order: Order, report: sweettracker.TrackingReport, task_id: str | None) -> int:
    """Insert the scans not yet on the order's timeline; the unique index makes a repeat a no-op."""
    if not report.events:
        return 0
    rows = [
        {
            "order": order.id,
            "type": TRACKING_EVENT,
            "detail": {"key": e.key, "at": e.at.isoformat(), "level": e.level, "kind": e.kind, "where": e.where},
            "task_id": task_id,
        }
        for e in report.events
    ]
    inserted = OrderEvent.insert_many(rows).on_conflict_ignore().returning(OrderEvent.id).execute()
    count = len(list(inserted))
    if count:
        log.info(
            "order %s: %d new tracking event(s)",
            order.order_number,
            count,
            extra={"order_id": order.id, "order_number": order.order_number, "event": TRACKING_EVENT},
        )
    return count


def failing_filter() -> Expression:
    """Shipments operators should look at: FAILING_AFTER failed polls in a row, or given up."""
    # COALESCE: a NULL stopped_reason must make the condition false, not unknown (so that NOT works).
    return (Shipment.failures >= FAILING_AFTER) | (fn.COALESCE(Shipment.stopped_reason, "") == "gave_up")


def count_failing() -> int:
    return int(Shipment.select(fn.COUNT(Shipment.order)).where(failing_filter()).scalar() or 0)
