"""Order emails over real SMTP (an aiosmtpd server): content, sent once, retried when SMTP is down."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from models.infra.settings import get_settings
from models.mail import send as mail
from models.tables import EmailLog, Order, OrderItem, Product
from tests.smtp_sink import SMTPSink
from tests.support import sql_sent


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(sink.port))
    monkeypatch.setenv("MAIL_FROM", "shop@example.com")
    monkeypatch.setenv("OPS_EMAIL", "ops@example.com")
    get_settings.cache_clear()
    yield sink
    sink.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def order(make_user: Any) -> Order:
    user, _ = make_user(email="ana@example.com")
    order = Order.create(
        order_number="ORD-20261128-ABCDEFGH",
        user=user.id,
        status="confirmed",
        payment_status="paid",
        currency="KRW",
        subtotal=24000,
        shipping_fee=3000,
        total=27000,
        shipping_address={
            "recipient_name": "Kim Minji",
            "address_line1": "1 Sejong-daero",
            "city": "Seoul",
            "postal_code": "04524",
        },
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        tracking_number="640123456789",
        carrier="04",
    )
    OrderItem.create(
        order=order.id,
        product_name="Linen Overshirt",
        product_sku="SKU-1",
        unit_price=12000,
        quantity=2,
        subtotal=24000,
    )
    return order


def body(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_confirmation_email_names_items_totals_and_address(smtp: SMTPSink, order: Order) -> None:
    assert mail.send_order_email(order.id, "confirmation") is True
    [message] = smtp.messages
    assert message["To"] == "ana@example.com" and message["From"] == "Shop <shop@example.com>"
    assert message["Subject"] == "[Shop] 주문이 확인되었습니다 (주문번호 ORD-20261128-ABCDEFGH)"
    assert message["Message-ID"] == "<confirmation.ORD-20261128-ABCDEFGH@example.com>"
    text = body(message)
    assert "- Linen Overshirt (SKU-1) 2개  24,000원" in text
    assert "총 결제 금액: 27,000원" in text and "Seoul" in text


def test_a_confirmation_reads_its_order_lines_and_customer_in_one_statement(
    smtp: SMTPSink, order: Order, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert mail.send_order_email(order.id, "confirmation") is True
    reads = [sql for sql in sql_sent(caplog.records) if "SELECT" in sql[:20]]
    assert len(reads) == 1, reads
    text = body(smtp.messages[0])
    assert smtp.messages[0]["To"] == "ana@example.com" and "Linen Overshirt" in text


def test_shipped_email_carries_tracking(smtp: SMTPSink, order: Order) -> None:
    mail.send_order_email(order.id, "shipped")
    text = body(smtp.messages[0])
    assert "택배사: CJ대한통운" in text and "송장번호: 640123456789" in text


def test_an_email_is_sent_once(smtp: SMTPSink, order: Order) -> None:
    assert mail.send_order_email(order.id, "confirmation") is True
    assert mail.send_order_email(order.id, "confirmation") is False
    assert len(smtp.messages) == 1
    row = EmailLog.get(EmailLog.order == order.id)
    assert (row.status, row.attempts) == ("sent", 1)


def test_smtp_down_raises_retryable_and_sends_later(smtp: SMTPSink, order: Order) -> None:
    port = smtp.port
    smtp.stop()
    with pytest.raises(mail.MailUnavailable):
        mail.send_order_email(order.id, "confirmation")
    assert EmailLog.get(EmailLog.order == order.id).status == "pending"
    smtp.port = port
    smtp.start()
    assert mail.send_order_email(order.id, "confirmation") is True
    assert len(smtp.messages) == 1
    assert EmailLog.get(EmailLog.order == order.id).attempts == 2


def test_smtp_auth_is_used_when_configured(monkeypatch: pytest.MonkeyPatch, order: Order) -> None:
    sink = SMTPSink(auth=("mailer", "s3cret")).start()
    try:
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(sink.port))
        get_settings.cache_clear()
        with pytest.raises(mail.MailRejected):  # the server insists on AUTH: 530 without it
            mail.send_order_email(order.id, "confirmation")
        monkeypatch.setenv("SMTP_USER", "mailer")
        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
        get_settings.cache_clear()
        assert mail.send_order_email(order.id, "confirmation") is True
        assert len(sink.messages) == 1
    finally:
        sink.stop()
        monkeypatch.undo()
        get_settings.cache_clear()


def test_low_stock_alert_once_a_day(smtp: SMTPSink) -> None:
    product = Product.create(
        sku="LOW-1",
        name="Beanie",
        slug="beanie",
        price=1000,
        stock_quantity=2,
        low_stock_threshold=5,
        tags=[],
        images=[],
    )
    assert mail.send_low_stock_alert(product.id) is True
    assert mail.send_low_stock_alert(product.id) is False
    [message] = smtp.messages
    assert message["To"] == "ops@example.com" and "LOW-1" in message["Subject"]
