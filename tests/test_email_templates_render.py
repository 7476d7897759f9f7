"""The email templates: every kind renders in Korean and English, amounts and dates read as each
language writes them (in Asia/Seoul), HTML escapes what customers typed, and a missing value is an
error rather than a blank."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from jinja2 import UndefinedError

from models.mail.render import KINDS, kst, money, normalize_locale, render_email

EVIL = '<script>alert("x")</script> Linen & Co'


def context() -> dict[str, Any]:
    line = {"name": EVIL, "sku": "SKU-1", "quantity": 2, "unit_price": 12000, "subtotal": 24000}
    order = {
        "number": "ORD-20261130-ABCDEFGH",
        "created_at": datetime(2026, 11, 30, 15, 30, tzinfo=UTC),
        "currency": "KRW",
        "subtotal": 24000,
        "shipping_fee": 3000,
        "discount_amount": 0,
        "discount_code": None,
        "total": 27000,
        "shipping_method": "standard",
        "payment_method": "dummy",
        "url": None,
        "items": [line],
        "address": {
            "recipient_name": "Kim Minji",
            "phone": "010-1234-5678",
            "postal_code": "04524",
            "address_line1": "110 Sejong-daero",
            "address_line2": None,
            "city": "Seoul",
        },
    }
    return {
        "shop_name": "Shop",
        "shop_url": None,
        "customer_name": "Kim Minji",
        "order": order,
        "payment": {
            "paid": True,
            "refund_amount": 27000,
            "virtual_account": {
                "bank": "신한은행",
                "account_number": "56211-0212-3456",
                "holder": "Shop",
                "due_date": None,
            },
        },
        "tracking": {
            "carrier_name": "CJ대한통운",
            "tracking_number": "640123456789",
            "url": "https://tracking.example/640123456789?a=1&b=2",
        },
        "event_at": datetime(2026, 12, 1, 3, 5, tzinfo=UTC),
        "reason": "customer",
        "cart": {"items": [line], "subtotal": 24000, "currency": "KRW", "url": None},
    }


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (12000, "KRW", "ko", "12,000원"),
        (12000, "KRW", "en", "₩12,000"),
        (-2400, "KRW", "ko", "-2,400원"),
        (-2400, "KRW", "en", "-₩2,400"),
        (0, "KRW", "ko", "0원"),
        (1250, "USD", "en", "$12.50"),
        (1250, "USD", "ko", "$12.50"),
        (123456, "CHF", "en", "1,234.56 CHF"),
    ],
)
def test_money_reads_as_each_language_writes_it(amount: int, currency: str, locale: str, expected: str) -> None:
    assert money(amount, currency, locale) == expected


def test_dates_are_shown_in_seoul_time() -> None:
    late_utc = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)  # already 1 December in Seoul
    assert kst(late_utc, "ko") == "2026년 12월 1일 (화) 00:30"
    assert kst(late_utc, "en") == "1 Dec 2026, 00:30 KST"
    assert kst("2026-11-30T15:30:00+00:00", "ko") == "2026년 12월 1일 (화) 00:30"
    assert kst(date(2026, 12, 25), "ko") == "2026년 12월 25일 (금)"
    assert kst(None, "en") == ""


def test_locales_fall_back_to_korean() -> None:
    assert [normalize_locale(x) for x in ("en", "en-US", "EN_gb", "ko", "ko-KR", "fr", None, "")] == [
        "en",
        "en",
        "en",
        "ko",
        "ko",
        "ko",
        "ko",
        "ko",
    ]


@pytest.mark.parametrize("locale", ["ko", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_subject_text_and_escaped_html(kind: str, locale: str) -> None:
    email = render_email(kind, locale, context())
    assert email.subject and "\n" not in email.subject
    assert f'<html lang="{locale}">' in email.html
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "Linen &amp; Co" in email.html
    assert EVIL in email.text  # plain text carries the name as typed
    assert "\n\n\n" not in email.text
    if kind != "abandoned_cart":
        assert "ORD-20261130-ABCDEFGH" in email.subject
        assert "ORD-20261130-ABCDEFGH" in email.text and "ORD-20261130-ABCDEFGH" in email.html
        total = "27,000원" if locale == "ko" else "₩27,000"
        assert total in email.text and total in email.html
    else:
        subtotal = "24,000원" if locale == "ko" else "₩24,000"
        assert subtotal in email.text and subtotal in email.html


def test_korean_confirmation_reads_naturally() -> None:
    ctx = context()
    ctx["order"].update(discount_amount=2700, discount_code="WELCOME10", total=24300)
    email = render_email("confirmation", "ko", ctx)
    assert email.subject == "[Shop] 주문이 확인되었습니다 (주문번호 ORD-20261130-ABCDEFGH)"
    assert "할인 (WELCOME10): -2,700원" in email.text
    assert "총 결제 금액: 24,300원" in email.text
    assert "주문일시: 2026년 12월 1일 (화) 00:30" in email.text
    assert "(04524) Seoul 110 Sejong-daero" in email.text


def test_virtual_account_details_appear_in_the_confirmation() -> None:
    ctx = context()
    ctx["order"]["payment_method"] = "toss"
    ctx["payment"]["virtual_account"] = {
        "bank": "신한은행",
        "account_number": "56211-0212-3456",
        "holder": "Shop",
        "due_date": "2026-12-02T14:59:59+00:00",
    }
    ko, en = render_email("confirmation", "ko", ctx), render_email("confirmation", "en", ctx)
    assert "가상계좌 입금: 신한은행 56211-0212-3456 (예금주 Shop)" in ko.text
    assert "입금 기한: 2026년 12월 2일 (수) 23:59" in ko.text and "입금 기한: 2026년 12월 2일 (수) 23:59" in ko.html
    assert "Bank transfer to 신한은행 56211-0212-3456" in en.text and "Transfer by: 2 Dec 2026, 23:59 KST" in en.text


def test_shipped_email_links_the_carrier_tracking_page() -> None:
    email = render_email("shipped", "en", context())
    assert "Tracking number: 640123456789" in email.text
    assert "https://tracking.example/640123456789?a=1&b=2" in email.text
    assert 'href="https://tracking.example/640123456789?a=1&amp;b=2"' in email.html


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    ctx = context()
    del ctx["tracking"]
    with pytest.raises(UndefinedError):
        render_email("shipped", "ko", ctx)
    with pytest.raises(ValueError):
        render_email("newsletter", "ko", ctx)


def test_mail_preview_writes_every_kind_in_every_language(tmp_path: Any) -> None:
    from models.mail.preview import write_previews

    written = write_previews(tmp_path)
    assert len(written) == len(KINDS) * 2 * 2
    assert (tmp_path / "shipped.ko.txt").read_text(encoding="utf-8").startswith("Subject: [모던샵] 주문하신 상품이")
    assert "&lt;Linen &amp; Co&gt;" in (tmp_path / "confirmation.en.html").read_text(encoding="utf-8")
