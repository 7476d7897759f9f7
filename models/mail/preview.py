"""Every customer email rendered from a sample order into files, to read them without sending
anything (`python manage.py mail-preview`): <kind>.<locale>.txt (subject first) and .html."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.mail.render import KINDS, LOCALES, render_email


def sample_context() -> dict[str, Any]:
    lines = [
        {
            "name": "린넨 오버셔츠 <Linen & Co>",
            "sku": "SKU-LINEN",
            "quantity": 2,
            "unit_price": 12000,
            "subtotal": 24000,
        },
        {"name": "코튼 양말", "sku": "SKU-SOCKS", "quantity": 1, "unit_price": 9000, "subtotal": 9000},
    ]
    order = {
        "number": "ORD-20261130-PREVIEW1",
        "created_at": datetime(2026, 11, 30, 8, 51, tzinfo=UTC),
        "currency": "KRW",
        "subtotal": 33000,
        "shipping_fee": 3000,
        "discount_amount": 3300,
        "discount_code": "WELCOME10",
        "total": 32700,
        "shipping_method": "standard",
        "payment_method": "toss",
        "url": "https://shop.example/orders/1",
        "items": lines,
        "address": {
            "recipient_name": "김민지",
            "phone": "010-1234-5678",
            "postal_code": "04524",
            "address_line1": "세종대로 110",
            "address_line2": "3층",
            "city": "서울특별시 중구",
        },
    }
    return {
        "shop_name": "모던샵",
        "shop_url": "https://shop.example",
        "customer_name": "김민지",
        "order": order,
        "payment": {
            "paid": True,
            "refund_amount": 32700,
            "virtual_account": {
                "bank": "신한은행",
                "account_number": "56211-0212-3456",
                "holder": "모던샵",
                "due_date": "2026-12-02T14:59:59+00:00",
            },
        },
        "tracking": {
            "carrier_name": "CJ대한통운",
            "tracking_number": "640123456789",
            "url": "https://trace.cjlogistics.com/next/tracking.html?wblNo=640123456789",
        },
        "event_at": datetime(2026, 12, 1, 3, 5, tzinfo=UTC),
        "reason": "customer",
        "cart": {"items": lines, "subtotal": 33000, "currency": "KRW", "url": "https://shop.example/cart"},
    }


def write_previews(out: Path) -> list[Path]:
    """Render each kind in each language into out/; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    context = sample_context()
    for kind in KINDS:
        for locale in LOCALES:
            email = render_email(kind, locale, context)
            text, html = out / f"{kind}.{locale}.txt", out / f"{kind}.{locale}.html"
            text.write_text(f"Subject: {email.subject}\n\n{email.text}", encoding="utf-8")
            html.write_text(email.html, encoding="utf-8")
            written += [text, html]
    return written
