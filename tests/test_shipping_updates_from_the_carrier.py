"""Shipping updates against a fake Sweet Tracker over real HTTP, with a real Celery worker sending
the emails to a real SMTP server: a parcel moves 2 -> 5 -> 6 and its order ends delivered with one
delivered email; a scan seen twice is recorded once; a carrier error or timeout leaves the order
untouched and is retried later; an unknown invoice is flagged for operators; polls are spread out,
claimed once, backed off, and stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models import events
from models.infra.db import db
from models.infra.settings import get_settings
from models.mail import send as mail
from models.orders import pipeline
from models.shipping import tracking
from models.tables import TRACKING_EVENT, EmailLog, Order, OrderEvent, Shipment, User, utcnow
from tasks.app import app
from tasks.dispatch import perform
from tests.fakes.sweettracker_server import FakeSweetTracker
from tests.order_factory import make_order
from tests.smtp_sink import SMTPSink
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.pipeline
ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"
INVOICE = "640123456789"
INTERVAL = 1800


@pytest.fixture(scope="module")
def carrier() -> Iterator[FakeSweetTracker]:
    with FakeSweetTracker(api_key="test-sweettracker-key", hang_seconds=20) as fake:
        yield fake


@pytest.fixture(scope="module")
def sink() -> Iterator[SMTPSink]:
    server = SMTPSink().start()
    yield server
    server.stop()


def _env(carrier: FakeSweetTracker, sink: SMTPSink) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "MAIL_FROM": "shop@example.com",
        "SWEETTRACKER_API_BASE": carrier.base_url,
        "SWEETTRACKER_API_KEY": carrier.api_key,
        "TRACKING_POLL_INTERVAL": str(INTERVAL),
    }


@pytest.fixture(scope="module")
def mail_worker(
    _worker_process: WorkerProcess, carrier: FakeSweetTracker, sink: SMTPSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker that mails to the sink and asks the fake carrier (the suite's own worker, which
    mails nowhere, is stopped meanwhile so that it cannot take these tasks)."""
    _worker_process.stop()
    worker = WorkerProcess(ROOT, tmp_path_factory.mktemp("shipping") / "worker.log")
    worker.start(env=_env(carrier, sink))
    yield worker
    worker.stop()


@pytest.fixture
def shop(
    mail_worker: WorkerProcess, carrier: FakeSweetTracker, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSweetTracker]:
    """This process configured like the worker; the fake and the sink emptied."""
    for name, value in _env(carrier, sink).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    carrier.reset()
    sink.messages.clear()
    sink.envelopes.clear()
    sink.collector.refusing, sink.collector.refused = False, 0
    yield carrier
    monkeypatch.undo()
    get_settings.cache_clear()


def ship(make_user: Any, invoice: str = INVOICE, carrier_code: str = "04") -> Order:
    user, _ = make_user(email=f"buyer{invoice}@example.com")
    User.update(full_name="Kim Minji").where(User.id == user.id).execute()
    order = make_order(user)
    perform(pipeline.admin_update, order.id, "shipped", invoice, carrier_code)
    return Order.get_by_id(order.id)


def poll(order: Order, at: Any = None) -> tracking.PollResult:
    """One poll of this order's shipment at `at` (default: when it is due), through the dispatcher."""
    shipment = Shipment.get_by_id(order.id)
    when = at or max(shipment.next_poll_at or utcnow(), utcnow())
    result: tracking.PollResult = perform(tracking.poll, order.id, now=when)
    return result


def scans(order_id: int) -> list[dict[str, Any]]:
    return [
        e.detail
        for e in OrderEvent.select()
        .where(OrderEvent.order == order_id, OrderEvent.type == TRACKING_EVENT)
        .order_by(OrderEvent.id)
    ]


def emails(sink: SMTPSink, kind: str) -> list[Any]:
    return [m for m in sink.messages if m["Message-ID"].startswith(f"<{kind}.")]


def test_a_parcel_goes_2_5_6_and_the_order_ends_delivered_with_one_email(
    shop: FakeSweetTracker, sink: SMTPSink, make_user: Any, client: Any
) -> None:
    order = ship(make_user)
    wait_for(lambda: emails(sink, "shipped"), timeout=30, what="the shipped email")

    shop.advance("04", INVOICE, 2, where="서울금천")
    assert poll(order) == tracking.PollResult("recorded", 1)
    shop.advance("04", INVOICE, 5, where="서울중구")
    assert poll(order) == tracking.PollResult("recorded", 1)
    middle = Order.get_by_id(order.id)
    assert middle.status == "shipped" and middle.version > order.version  # the page changed: a new ETag
    shipment = Shipment.get_by_id(order.id)
    assert (shipment.level, shipment.status_text, shipment.delivered) == (5, "배송출발", False)

    delivered_scan = shop.advance("04", INVOICE, 6, where="서울중구")
    assert poll(order) == tracking.PollResult("delivered", 1)
    done = Order.get_by_id(order.id)
    assert done.status == "delivered"
    assert done.delivered_at.timestamp() == delivered_scan["time"] / 1000  # the carrier's moment, not ours
    assert OrderEvent.get(OrderEvent.order == order.id, OrderEvent.type == "order_delivered").detail["by"] == "carrier"
    shipment = Shipment.get_by_id(order.id)
    assert (shipment.next_poll_at, shipment.stopped_reason, shipment.level) == (None, "delivered", 6)

    asked = len(shop.tracking_requests(INVOICE))
    assert poll(order, at=utcnow() + timedelta(days=1)).outcome == "stopped"
    assert len(shop.tracking_requests(INVOICE)) == asked  # a delivered parcel is not asked about again
    assert tracking.claim_due(utcnow() + timedelta(days=30)) == []

    [delivered] = wait_for(lambda: emails(sink, "delivered"), timeout=30, what="the delivered email")
    assert delivered["To"] == f"buyer{INVOICE}@example.com" and done.order_number in delivered["Subject"]
    assert mail.send_order_email(order.id, "delivered") is False  # a redelivered task sends nothing
    assert len(emails(sink, "delivered")) == 1

    user = User.get_by_id(order.user_id)
    from models.accounts import service as accounts

    headers = {"Authorization": f"Bearer {accounts.issue_tokens(user).access_token}"}
    tracked = client.get(f"{API}/orders/{order.id}", headers=headers).json()["tracking"]
    assert (tracked["carrier"], tracked["carrier_name"], tracked["tracking_number"]) == ("04", "CJ대한통운", INVOICE)
    assert (tracked["level"], tracked["status_text"], tracked["delivered"]) == (6, "배송완료", True)
    assert [(e["level"], e["description"], e["where"]) for e in tracked["events"]] == [
        (2, "집화처리", "서울금천"),
        (5, "배송출발", "서울중구"),
        (6, "배송완료", "서울중구"),
    ]


def test_a_scan_listed_twice_or_seen_again_is_recorded_once(shop: FakeSweetTracker, make_user: Any) -> None:
    order = ship(make_user)
    shop.advance("04", INVOICE, 3, where="곤지암Hub")
    shop.repeat_last("04", INVOICE)  # the carrier lists the same scan twice in one answer
    assert poll(order) == tracking.PollResult("recorded", 1)
    version = Order.get_by_id(order.id).version
    assert poll(order) == tracking.PollResult("unchanged", 0)  # and again on the next poll
    assert len(scans(order.id)) == 1
    assert Order.get_by_id(order.id).version == version  # nothing new: the order's ETag holds


def _snapshot(order_id: int) -> tuple[Any, ...]:
    order = Order.get_by_id(order_id)
    count = OrderEvent.select().where(OrderEvent.order == order_id).count()
    return order.status, order.version, order.updated_at, order.delivered_at, count


def test_a_carrier_error_or_timeout_leaves_the_order_untouched_and_is_retried(
    shop: FakeSweetTracker, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = ship(make_user)
    shop.advance("04", INVOICE, 2)
    before = _snapshot(order.id)

    shop.fail_next("106", invoice=INVOICE)
    due = Shipment.get_by_id(order.id).next_poll_at
    assert poll(order, at=due) == tracking.PollResult("failed", error="106")
    assert _snapshot(order.id) == before
    shipment = Shipment.get_by_id(order.id)
    assert shipment.failures == 1 and shipment.last_error.startswith("106: ")
    first_wait = shipment.next_poll_at - due
    assert timedelta(seconds=INTERVAL * 0.9) <= first_wait <= timedelta(seconds=INTERVAL * 1.1)
    assert tracking.claim_due(due + timedelta(seconds=60)) == []  # not asked again before its time

    monkeypatch.setattr(tracking, "REQUEST_TIMEOUT", 0.5)
    shop.hang_next(invoice=INVOICE)
    due = shipment.next_poll_at
    assert poll(order, at=due) == tracking.PollResult("failed", error="timeout")
    assert _snapshot(order.id) == before
    shipment = Shipment.get_by_id(order.id)
    assert shipment.failures == 2 and shipment.last_error.startswith("timeout")
    assert shipment.next_poll_at - due >= timedelta(seconds=2 * INTERVAL * 0.9)  # backed off

    shop.http_error_next(502, invoice=INVOICE)
    assert poll(order).outcome == "failed"
    assert _snapshot(order.id) == before

    # Retried at its time: the carrier answers again and the scan waiting there is recorded.
    due = Shipment.get_by_id(order.id).next_poll_at
    with events.collecting() as emitted:  # collected, not published: this test polls by itself
        assert tracking.claim_due(due) == [order.id]
    assert emitted == [events.PollShipment(order.id)]
    assert poll(order, at=due) == tracking.PollResult("recorded", 1)
    shipment = Shipment.get_by_id(order.id)
    assert (shipment.failures, shipment.last_error, shipment.level) == (0, None, 2)


def test_an_invoice_the_carrier_does_not_know_is_flagged_for_operators(
    shop: FakeSweetTracker, make_user: Any, client: Any
) -> None:
    order = ship(make_user, invoice="999000111222")
    before = _snapshot(order.id)
    outcomes = [poll(order).error for _ in range(tracking.FAILING_AFTER)]
    assert outcomes == ["104"] * tracking.FAILING_AFTER
    assert _snapshot(order.id) == before
    assert tracking.count_failing() == 1
    _, admin = make_user(email="ops@example.com", admin=True)
    [row] = client.get(f"{API}/admin/shipments?failing=true", headers=admin).json()["items"]
    assert row["order_id"] == order.id and row["failing"] and row["last_error"].startswith("104: ")
    assert row["next_poll_at"] is not None  # still asked, less often: the parcel may just not be scanned yet

    shop.advance("04", "999000111222", 2)  # the first scan arrives after all
    assert poll(order).outcome == "recorded"
    assert tracking.count_failing() == 0


def test_polling_gives_up_on_an_undelivered_parcel_after_max_age(shop: FakeSweetTracker, make_user: Any) -> None:
    order = ship(make_user)
    shop.advance("04", INVOICE, 3)
    late = order.shipped_at + tracking.MAX_AGE + timedelta(hours=1)
    assert poll(order, at=late).outcome == "gave_up"
    shipment = Shipment.get_by_id(order.id)
    assert (shipment.next_poll_at, shipment.stopped_reason) == (None, "gave_up")
    assert Order.get_by_id(order.id).status == "shipped" and tracking.count_failing() == 1


def test_an_order_delivered_by_hand_is_no_longer_polled(shop: FakeSweetTracker, make_user: Any) -> None:
    order = ship(make_user)
    perform(pipeline.admin_update, order.id, "delivered", None, None)
    assert Shipment.get_by_id(order.id).stopped_reason == "delivered"
    assert poll(order, at=utcnow() + timedelta(days=1)).outcome == "stopped"
    assert shop.tracking_requests(INVOICE) == []


def test_due_shipments_are_spread_claimed_once_and_leased(shop: FakeSweetTracker, make_user: Any) -> None:
    orders = [ship(make_user, invoice=f"5100000000{i:02d}") for i in range(12)]
    start = utcnow()
    firsts = [Shipment.get_by_id(o.id).next_poll_at for o in orders]
    assert all(start - timedelta(minutes=1) < t <= start + timedelta(seconds=INTERVAL) for t in firsts)
    assert len(set(firsts)) == len(firsts)  # not all at once

    later = start + timedelta(seconds=INTERVAL + 60)
    claimed: list[list[int]] = []

    def claim() -> None:
        with db.obj.connection_context(), events.collecting():  # not published: no worker polls them
            claimed.append(tracking.claim_due(later, 8))

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everyone = [order_id for batch in claimed for order_id in batch]
    assert sorted(everyone) == sorted(o.id for o in orders)  # each once, none twice
    assert max(len(batch) for batch in claimed) <= 8
    leased = {Shipment.get_by_id(o.id).next_poll_at for o in orders}
    assert leased == {later + tracking.LEASE}  # a lost poll comes back after the lease
    assert tracking.claim_due(later + timedelta(minutes=1)) == []


def test_the_beat_job_polls_through_the_worker(shop: FakeSweetTracker, sink: SMTPSink, make_user: Any) -> None:
    order = ship(make_user)
    shop.advance("04", INVOICE, 2)
    shop.advance("04", INVOICE, 6)
    Shipment.update(next_poll_at=utcnow() - timedelta(seconds=1)).where(Shipment.order == order.id).execute()
    app.send_task("beat.poll_shipments")
    wait_for(lambda: Order.get_by_id(order.id).status == "delivered", timeout=30, what="the worker's poll")
    assert len(scans(order.id)) == 2
    wait_for(
        lambda: EmailLog.get_or_none(
            EmailLog.order == order.id, EmailLog.kind == "delivered", EmailLog.status == "sent"
        ),
        timeout=30,
        what="the delivered email sent",
    )
    assert len(emails(sink, "delivered")) == 1


def test_an_smtp_outage_delays_the_email_but_never_the_order(
    shop: FakeSweetTracker, sink: SMTPSink, make_user: Any, client: Any
) -> None:
    """The mail server answers 451 (try again later) while the admin ships: the order ships at
    once, and the email follows, once, when the server takes mail again. (A server that is not
    listening at all is test_customer_emails_over_smtp's case.)"""
    user, _ = make_user(email="patient@example.com")
    _, admin = make_user(email="boss@example.com", admin=True)
    order = make_order(user)
    sink.collector.refusing = True
    try:
        shipped = client.patch(
            f"{API}/orders/{order.id}",
            json={"status": "shipped", "carrier": "04", "tracking_number": INVOICE},
            headers=admin,
        )
        assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
        wait_for(lambda: sink.collector.refused >= 1, timeout=60, what="a first, refused attempt")
        # The attempt is recorded when it ends (its transaction spans the SMTP exchange), a moment
        # after the server's answer.
        row = wait_for(
            lambda: EmailLog.get_or_none(EmailLog.order == order.id, EmailLog.kind == "shipped"),
            timeout=30,
            what="the refused attempt recorded",
        )
        assert row.status == "pending" and Order.get_by_id(order.id).status == "shipped"
    finally:
        sink.collector.refusing = False
    [message] = wait_for(lambda: emails(sink, "shipped"), timeout=120, what="the retried email")
    assert message["To"] == "patient@example.com"
    row = wait_for(
        lambda: EmailLog.get_or_none(EmailLog.order == order.id, EmailLog.status == "sent"),
        timeout=30,
        what="the email recorded as sent",
    )
    assert row.attempts >= 2 and len(emails(sink, "shipped")) == 1
