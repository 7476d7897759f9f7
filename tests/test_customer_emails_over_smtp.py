"""Every customer email over real SMTP (an aiosmtpd server in this process), in Korean and in
English: headers, envelope recipient, a text and an HTML part, the order number and totals as the
customer's language writes them, product names escaped in HTML, and each sent exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from models.cart import store as cart
from models.infra.db import db
from models.infra.settings import get_settings
from models.mail import send as mail
from models.orders import pipeline
from models.tables import EmailLog, Order, OrderEvent, Product, User
from tests.order_factory import make_order
from tests.smtp_sink import SMTPSink

API = "/api/v1"
EVIL = '<script>alert("x")</script> Linen'
TOTAL = {"ko": "32,700원", "en": "₩32,700"}
SUBJECT_WORDS = {
    "ko": {
        "awaiting_deposit": "입금 안내",
        "confirmation": "주문이 확인되었습니다",
        "shipped": "발송되었습니다",
        "delivered": "배송이 완료되었습니다",
        "cancelled": "주문이 취소되었습니다",
        "refunded": "환불이 완료되었습니다",
        "payment_failed": "결제가 완료되지 않았습니다",
        "expired": "결제 기한이 지나",
    },
    "en": {
        "awaiting_deposit": "to complete order",
        "confirmation": "is confirmed",
        "shipped": "is on its way",
        "delivered": "was delivered",
        "cancelled": "was cancelled",
        "refunded": "Your refund",
        "payment_failed": "did not go through",
        "expired": "no payment in time",
    },
}
# What only that kind says, in each language (text part).
KIND_LINES = {
    "ko": {
        "awaiting_deposit": "입금 계좌: 신한은행 56211-0212-3456 (예금주 모던샵)",
        "confirmation": "입금 기한: 2026년 12월 2일 (수) 23:59",
        "shipped": "송장번호: 640123456789",
        "delivered": "배송 완료되었습니다",
        "cancelled": "요청하신 대로 주문이 취소되었습니다",
        "refunded": "결제 금액 32,700원이",
        "payment_failed": "장바구니는 그대로 남아 있으니",
        "expired": "입금 기한(2026년 12월 2일 (수) 23:59)까지 입금이 확인되지 않아",
    },
    "en": {
        "awaiting_deposit": "Account: 신한은행 56211-0212-3456 (holder: 모던샵)",
        "confirmation": "Transfer by: 2 Dec 2026, 23:59 KST",
        "shipped": "Tracking number: 640123456789",
        "delivered": "was delivered on",
        "cancelled": "cancelled as you asked",
        "refunded": "We refunded ₩32,700",
        "payment_failed": "Your cart is still there",
        "expired": "No transfer arrived by the deadline (2 Dec 2026, 23:59 KST)",
    },
}
VIRTUAL_ACCOUNT = {
    "bank": "신한은행",
    "account_number": "56211-0212-3456",
    "holder": "모던샵",
    "due_date": "2026-12-02T14:59:59+00:00",
}


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "MAIL_FROM": "shop@example.com",
        "SHOP_NAME": "모던샵",
        "STOREFRONT_URL": "https://shop.example",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield sink
    sink.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


def customer(make_user: Any, locale: str | None, email: str = "minji@example.com") -> User:
    user, _ = make_user(email=email)
    User.update(locale=locale, full_name="Kim Minji").where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def order_for(user: User) -> Order:
    """An order that has been through everything an email can report: paid into a virtual account,
    shipped, delivered, cancelled by its customer, refunded."""
    order = make_order(
        user,
        status="delivered",
        product_name=EVIL,
        payment_method="toss",
        payment_gateway="toss",
        payment_details={"virtual_account": VIRTUAL_ACCOUNT},
        carrier="04",
        tracking_number="640123456789",
        shipped_at=datetime(2026, 12, 3, 1, 0, tzinfo=UTC),
        delivered_at=datetime(2026, 12, 4, 6, 30, tzinfo=UTC),
        cancelled_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
    )
    OrderEvent.create(order=order.id, type="order_cancelled", detail={"by": "customer", "reason": "customer"})
    OrderEvent.create(order=order.id, type="payment_refunded", detail={"transaction_id": "t", "amount": 32700})
    return order


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "both a text and an HTML part"
    assert text.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    return text.get_content(), html.get_content()


@pytest.mark.parametrize("locale", ["ko", "en"])
@pytest.mark.parametrize("kind", mail.KINDS)
def test_each_order_email_arrives_complete_in_each_language(
    smtp: SMTPSink, make_user: Any, kind: str, locale: str
) -> None:
    order = order_for(customer(make_user, locale))
    assert mail.send_order_email(order.id, kind) is True
    [message] = smtp.messages
    assert message["From"] == "모던샵 <shop@example.com>" and message["To"] == "minji@example.com"
    assert smtp.envelopes == [("shop@example.com", ["minji@example.com"])]
    assert message["Message-ID"] == f"<{kind}.{order.order_number}@example.com>" and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    subject = message["Subject"]
    assert subject.startswith("[모던샵] ") and order.order_number in subject
    assert SUBJECT_WORDS[locale][kind] in subject
    text, html = parts(message)
    assert order.order_number in text and order.order_number in html
    assert TOTAL[locale] in text and TOTAL[locale] in html
    assert KIND_LINES[locale][kind] in text
    assert EVIL in text  # plain text carries the name as the customer saw it
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Linen" in html
    assert f'<html lang="{locale}">' in html
    other = "en" if locale == "ko" else "ko"
    assert TOTAL[other] not in text  # one language per email


def test_confirmation_lists_items_totals_address_and_payment(smtp: SMTPSink, make_user: Any) -> None:
    order = order_for(customer(make_user, "ko"))
    mail.send_order_email(order.id, "confirmation")
    text, html = parts(smtp.messages[0])
    for line in (
        f"- {EVIL} (SKU-LINEN) 2개  24,000원",
        "- Cotton Socks (SKU-SOCKS) 1개  9,000원",
        "상품 금액: 33,000원",
        "배송비 (일반 배송): 3,000원",
        "할인 (WELCOME10): -3,300원",
        "총 결제 금액: 32,700원",
        "가상계좌 입금: 신한은행 56211-0212-3456 (예금주 모던샵)",
        "김민지 / 010-1234-5678",
        "(04524) 서울특별시 중구 세종대로 110 3층",
        f"주문 상세 보기: https://shop.example/orders/{order.id}",
    ):
        assert line in text, line
    assert "56211-0212-3456" in html and "세종대로 110" in html
    assert f'href="https://shop.example/orders/{order.id}"' in html


def test_shipped_email_links_the_carriers_tracking_page(smtp: SMTPSink, make_user: Any) -> None:
    order = order_for(customer(make_user, "en"))
    mail.send_order_email(order.id, "shipped")
    text, html = parts(smtp.messages[0])
    link = "https://trace.cjlogistics.com/next/tracking.html?wblNo=640123456789"
    assert "Carrier: CJ대한통운" in text and f"Track your parcel: {link}" in text
    assert f'href="{link}"' in html


@pytest.mark.parametrize("kind", mail.KINDS)
def test_each_kind_is_sent_once_however_often_it_is_asked_for(smtp: SMTPSink, make_user: Any, kind: str) -> None:
    order = order_for(customer(make_user, "ko"))
    assert mail.send_order_email(order.id, kind) is True
    assert mail.send_order_email(order.id, kind) is False  # a redelivered task
    assert len(smtp.messages) == 1
    row = EmailLog.get(EmailLog.order == order.id, EmailLog.kind == kind)
    assert (row.status, row.attempts, row.recipient) == ("sent", 1, "minji@example.com")


def test_two_runs_of_one_email_at_once_send_it_once(smtp: SMTPSink, make_user: Any) -> None:
    """Two runs of one email can overlap: Redis hands a task out again when its first copy has held
    it past the visibility timeout (a retry's countdown can be that long), and a re-drive can race
    a retry. The second run must wait for the first, then find the email sent."""
    order = order_for(customer(make_user, "ko"))
    smtp.collector.delay = 0.5  # the first run is still sending when the second asks
    results: list[bool] = []

    def run() -> None:
        with db.obj.connection_context():
            results.append(mail.send_order_email(order.id, "shipped"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert len(smtp.messages) == 1
    row = EmailLog.get(EmailLog.order == order.id, EmailLog.kind == "shipped")
    assert (row.status, row.attempts) == ("sent", 1)


def test_the_language_is_the_customers_else_the_shops_default(
    smtp: SMTPSink, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    english = order_for(customer(make_user, "en", "emma@example.com"))
    undecided = order_for(customer(make_user, None, "noone@example.com"))
    mail.send_order_email(english.id, "shipped")
    mail.send_order_email(undecided.id, "shipped")
    assert [parts(m)[0].splitlines()[0] for m in smtp.messages] == [
        "Hello Kim Minji,",
        "Kim Minji 고객님, 안녕하세요. 모던샵입니다.",
    ]
    monkeypatch.setenv("DEFAULT_LOCALE", "en")
    get_settings.cache_clear()
    mail.send_order_email(undecided.id, "delivered")
    assert "was delivered" in smtp.messages[-1]["Subject"]


def test_smtp_down_is_retryable_and_the_email_goes_once_it_is_back(smtp: SMTPSink, make_user: Any) -> None:
    order = order_for(customer(make_user, "en"))
    port = smtp.port
    smtp.stop()
    with pytest.raises(mail.MailUnavailable):
        mail.send_order_email(order.id, "delivered")
    smtp.port = port
    smtp.start()
    assert mail.send_order_email(order.id, "delivered") is True
    assert mail.send_order_email(order.id, "delivered") is False
    assert len(smtp.messages) == 1
    assert EmailLog.get(EmailLog.order == order.id).attempts == 2


def test_abandoned_cart_reminder_goes_once_to_the_carts_owner(
    smtp: SMTPSink, make_user: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = customer(make_user, "ko")
    tee = Product.create(sku="TEE-1", name=EVIL, slug="tee", price=19000, stock_quantity=5, tags=[], images=[])
    for session in ("owned-cart-1", "guest-cart-1"):
        added = client.post(
            f"{API}/cart/items", json={"product_id": tee.id, "quantity": 2}, headers={"X-Session-ID": session}
        )
        assert added.status_code == 200
    cart.set_owner("owned-cart-1", owner.id)
    monkeypatch.setenv("ABANDONED_CART_AFTER", "-1")
    get_settings.cache_clear()
    from models import events

    with events.collecting() as emitted:
        assert pipeline.sweep_abandoned_carts() == 2
    assert emitted == [events.SendCartReminder("owned-cart-1", owner.id)]  # the guest's cart has no one to tell
    assert mail.send_cart_reminder("owned-cart-1", owner.id) is True
    assert mail.send_cart_reminder("owned-cart-1", owner.id) is False  # once per cart
    [message] = smtp.messages
    assert message["To"] == "minji@example.com"
    assert message["Subject"] == "[모던샵] 장바구니에 담아 두신 상품이 기다리고 있어요"
    written = f"{cart.last_write('owned-cart-1') or 0:.3f}"
    assert message["Message-ID"] == f"<cart-reminder.owned-cart-1.{written}@example.com>"
    text, html = parts(message)
    assert f"- {EVIL} (TEE-1) 2개  38,000원" in text and "상품 금액: 38,000원" in text
    assert "장바구니 보기: https://shop.example/cart" in text
    assert "<script>" not in html and "38,000원" in html
    with events.collecting() as emitted:
        assert pipeline.sweep_abandoned_carts() == 0  # swept once
    assert emitted == []


def test_no_reminder_for_an_emptied_cart_or_an_unknown_customer(smtp: SMTPSink, make_user: Any) -> None:
    owner = customer(make_user, "en")
    assert mail.send_cart_reminder("never-had-items", owner.id) is False
    assert mail.send_cart_reminder("never-had-items", 2_000_000_000) is False
    assert smtp.messages == [] and EmailLog.select().count() == 0
