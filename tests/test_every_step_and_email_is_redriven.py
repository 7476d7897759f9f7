"""The re-drive asks again for whatever an order's state says is still due, for every step and
every kind of email: reserve, prepare, capture, void, refund, and the confirmation, shipped,
delivered, cancelled, refunded, payment_failed and expired emails. Each is idempotent, so asking
twice does nothing more; an email a task is still retrying, refused for good (5xx), tried too
often or due for too long is left alone."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery

from models import events
from models.events import CapturePayment, RefundPayment, SendOrderEmail, VoidPayment
from models.infra.redis_client import get_redis
from models.infra.settings import get_settings
from models.mail import send as mail
from models.orders import pipeline
from models.payments.dummy import PREFIX, DummyGateway
from models.tables import EmailLog, Order, OrderItem, utcnow
from tests.smtp_sink import SMTPSink
from tests.support import wait_for

NUMBERS = itertools.count(1)
# kind -> the order fields of a state in which that email is due
DUE_IN = {
    "confirmation": {"status": "confirmed", "payment_status": "paid"},
    "shipped": {"status": "shipped", "payment_status": "paid", "carrier": "04", "tracking_number": "123456789012"},
    "delivered": {"status": "delivered", "payment_status": "paid", "carrier": "04", "tracking_number": "123456789013"},
    "cancelled": {"status": "cancelled", "payment_status": "voided"},
    "refunded": {"status": "cancelled", "payment_status": "refunded"},
    "payment_failed": {"status": "failed", "payment_status": "failed", "failure_reason": "payment_declined"},
    "expired": {"status": "expired", "payment_status": "voided"},
    "awaiting_deposit": {
        "status": "reserved",
        "payment_status": "awaiting_deposit",
        "payment_next_action": {"type": "toss_widget"},
        "payment_details": {
            "virtual_account": {
                "bank": "신한",
                "account_number": "12345678901234",
                "holder": "Shop",
                "due_date": "2026-12-31T23:59:59+09:00",
            }
        },
    },
}


def make_order(user: Any, changed_ago: timedelta = timedelta(minutes=1), **fields: Any) -> Order:
    fields.setdefault(
        "paid_at", utcnow() - changed_ago if fields.get("payment_status") in ("paid", "refunded") else None
    )
    order = Order.create(
        order_number=f"ORD-RD-{next(NUMBERS)}",
        user=user.id,
        currency="KRW",
        subtotal=1000,
        total=1000,
        shipping_address={"city": "Seoul"},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        updated_at=utcnow() - changed_ago,
        **fields,
    )
    OrderItem.create(
        order=order.id, product_name="Tee", product_sku="SKU-1", unit_price=1000, quantity=1, subtotal=1000
    )
    return order


def redriven(now: Any = None) -> list[events.Message]:
    with events.collecting() as emitted:
        pipeline.redrive(now=now)
    return emitted


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(sink.port))
    get_settings.cache_clear()
    yield sink
    sink.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


def test_every_kind_of_email_has_a_due_state() -> None:
    assert set(DUE_IN) == set(pipeline.EMAIL_DUE) == set(mail.KINDS)


@pytest.mark.parametrize("kind", sorted(DUE_IN))
def test_each_email_kind_is_redriven_until_sent_once(kind: str, make_user: Any, smtp: SMTPSink) -> None:
    user, _ = make_user()
    order = make_order(user, **DUE_IN[kind])
    assert SendOrderEmail(order.id, kind) in redriven()
    assert mail.send_order_email(order.id, kind) is True
    assert SendOrderEmail(order.id, kind) not in redriven()
    assert mail.send_order_email(order.id, kind) is False  # a duplicate message sends nothing
    assert [m["Message-ID"] for m in smtp.messages] == [f"<{kind}.{order.order_number}@localhost>"]


def test_an_email_in_celerys_hands_is_left_to_it(make_user: Any, smtp: SMTPSink) -> None:
    user, _ = make_user()
    order = make_order(user, **DUE_IN["shipped"])
    port = smtp.port
    smtp.stop()
    with pytest.raises(mail.MailUnavailable):  # the task's first try; Celery retries it with backoff
        mail.send_order_email(order.id, "shipped")
    assert SendOrderEmail(order.id, "shipped") not in redriven()
    later = utcnow() + mail.RETRY_QUIET + timedelta(seconds=1)  # Celery gave up long ago
    assert SendOrderEmail(order.id, "shipped") in redriven(now=later)
    EmailLog.update(attempts=mail.MAX_ATTEMPTS).where(EmailLog.order == order.id).execute()
    assert SendOrderEmail(order.id, "shipped") not in redriven(now=later)  # tried often enough
    smtp.port = port
    smtp.start()


def test_an_email_refused_for_good_is_not_redriven(make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = SMTPSink(auth=("mailer", "s3cret")).start()  # 530 to a client that does not log in
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(sink.port))
    get_settings.cache_clear()
    try:
        user, _ = make_user()
        order = make_order(user, **DUE_IN["delivered"])
        with pytest.raises(mail.MailRejected):
            mail.send_order_email(order.id, "delivered")
        assert EmailLog.get(EmailLog.order == order.id).status == "rejected"
        assert SendOrderEmail(order.id, "delivered") not in redriven(now=utcnow() + timedelta(hours=1))
    finally:
        sink.stop()
        monkeypatch.undo()
        get_settings.cache_clear()


def test_an_email_that_cannot_be_rendered_is_not_redriven(make_user: Any, smtp: SMTPSink) -> None:
    user, _ = make_user()
    order = make_order(user, status="shipped", payment_status="paid")  # no carrier: the template needs one
    with pytest.raises(Exception):  # noqa: B017  (whatever the template engine raises)
        mail.send_order_email(order.id, "shipped")
    assert EmailLog.get(EmailLog.order == order.id).status == "failed"
    assert SendOrderEmail(order.id, "shipped") not in redriven(now=utcnow() + timedelta(hours=1))
    assert smtp.messages == []


def test_emails_of_old_orders_are_not_sent_any_more(make_user: Any) -> None:
    user, _ = make_user()
    order = make_order(user, changed_ago=pipeline.EMAIL_HORIZON + timedelta(minutes=1), **DUE_IN["expired"])
    assert [m for m in redriven() if getattr(m, "order_id", None) == order.id] == []


def test_void_refund_and_capture_are_redriven(make_user: Any) -> None:
    user, _ = make_user()
    unvoided = make_order(user, status="expired", payment_status="authorized")
    unrefunded = make_order(user, status="cancelled", payment_status="paid", payment_transaction_id="dummy_ch_x")
    uncaptured = make_order(
        user,
        status="reserved",
        payment_status="pending",
        payment_submitted_at=utcnow(),
        payment_proof={"token": "tok_ok"},
        payment_next_action={"type": "token"},
    )
    fresh = make_order(user, changed_ago=timedelta(0), status="expired", payment_status="authorized")
    emitted = redriven()
    assert VoidPayment(unvoided.id) in emitted and RefundPayment(unrefunded.id) in emitted
    assert CapturePayment(uncaptured.id) in emitted
    assert [m for m in emitted if getattr(m, "order_id", None) == fresh.id] == []  # not stuck yet


@pytest.mark.pipeline
def test_lost_messages_of_every_kind_are_redriven_through_the_worker(make_user: Any, worker: Any) -> None:
    """Orders whose follow-ups were all lost; beat's re-drive alone (through the worker) finishes them."""
    user, _ = make_user()
    charge = "dummy_ch_lost_refund"
    get_redis().hset(PREFIX + "charges", charge, 1000)
    orders = {
        "void": make_order(user, status="expired", payment_status="authorized"),
        "refund": make_order(user, status="cancelled", payment_status="paid", payment_transaction_id=charge),
        "capture": make_order(
            user,
            status="reserved",
            payment_status="pending",
            payment_submitted_at=utcnow(),
            payment_proof={"token": "tok_ok"},
            payment_next_action={"type": "token"},
            stock_held=True,
            reserved_until=utcnow() + timedelta(minutes=10),
        ),
        **{kind: make_order(user, **fields) for kind, fields in DUE_IN.items()},
    }
    expected_emails = {(orders[kind].id, kind) for kind in DUE_IN} | {
        (orders["void"].id, "expired"),
        (orders["refund"].id, "cancelled"),
        (orders["refund"].id, "refunded"),
        (orders["capture"].id, "confirmation"),
        (orders["cancelled"].id, "cancelled"),
    }
    beat = Celery(broker=get_settings().broker_url)

    def finished() -> bool:
        beat.send_task("beat.redrive_stuck_orders")
        sent = set(EmailLog.select(EmailLog.order, EmailLog.kind).where(EmailLog.status == "sent").tuples())
        states = {
            name: (o := Order.get_by_id(orders[name].id)).status + "/" + o.payment_status
            for name in ("void", "refund", "capture")
        }
        return expected_emails <= sent and states == {
            "void": "expired/voided",
            "refund": "cancelled/refunded",
            "capture": "confirmed/paid",
        }

    try:
        wait_for(finished, timeout=90, interval=1.0, what="the re-drive to finish every order")
    finally:
        beat.close()
    ledger = DummyGateway.ledger()
    assert ledger.refunds == {charge: 1000}
    assert len(ledger.charges) == 2  # the pre-existing charge and one capture, however often asked
    rows = list(EmailLog.select(EmailLog.order, EmailLog.kind).tuples())
    assert len(rows) == len(set(rows))  # one row per order and kind: each email sent once
    leftover = [
        m
        for m in redriven(now=utcnow() + timedelta(minutes=1))
        if getattr(m, "order_id", None) in {o.id for o in orders.values()}
    ]
    assert leftover == []
