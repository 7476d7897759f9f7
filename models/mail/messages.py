"""The operators' low-stock alert, in plain text (customer emails are templates: models/mail/render.py)."""

from __future__ import annotations


def render_low_stock(sku: str, name: str, stock: int, threshold: int) -> tuple[str, str]:
    subject = f"Low stock: {sku} ({stock} left)"
    text = f"{name} ({sku}) is down to {stock} unit(s); the low-stock threshold is {threshold}.\n"
    return subject, text
