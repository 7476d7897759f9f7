"""Subjects and bodies of the shop's transactional emails (plain text, with a simple HTML twin)."""

from __future__ import annotations

import html
from typing import Any

from models.tables import Order, OrderItem

SUBJECTS = {
    "confirmation": "Your order {n} is confirmed",
    "shipped": "Your order {n} is on its way",
    "delivered": "Your order {n} was delivered",
    "cancelled": "Your order {n} was cancelled",
    "refunded": "Your refund for order {n}",
    "payment_failed": "Payment for order {n} did not go through",
    "expired": "Your reservation for order {n} expired",
}
INTROS = {
    "confirmation": "Thank you! We received your payment and are preparing your order.",
    "shipped": "Your order has left our warehouse.",
    "delivered": "Your order was delivered. We hope you enjoy it.",
    "cancelled": "Your order was cancelled. Any payment will be refunded.",
    "refunded": "We refunded your payment. It may take a few days to appear on your statement.",
    "payment_failed": "Your payment was declined, so we released the items. Your cart is still there if you "
                      "want to try again.",
    "expired": "We held your items for you, but no payment arrived in time, so we released them.",
}
ZERO_DECIMAL = {"KRW", "JPY", "VND"}


def money(amount: int, currency: str) -> str:
    """12000 KRW -> '12,000 KRW'; 1250 USD -> '12.50 USD' (amounts are in minor units)."""
    if currency in ZERO_DECIMAL:
        return f"{amount:,} {currency}"
    return f"{amount / 100:,.2f} {currency}"


def render_order(kind: str, order: Order, items: list[OrderItem]) -> tuple[str, str, str]:
    """(subject, text, html) for an order email of this kind."""
    subject = SUBJECTS[kind].format(n=order.order_number)
    lines = [INTROS[kind], "", f"Order {order.order_number}", ""]
    lines += [f"  {i.product_name} x {i.quantity}  {money(i.subtotal, order.currency)}" for i in items]
    lines += ["", f"Subtotal: {money(order.subtotal, order.currency)}",
              f"Shipping: {money(order.shipping_fee, order.currency)}"]
    if order.discount_amount:
        lines.append(f"Discount: -{money(order.discount_amount, order.currency)}")
    lines.append(f"Total: {money(order.total, order.currency)}")
    if kind == "shipped" and order.tracking_number:
        lines += ["", f"Tracking number: {order.tracking_number}" + (f" ({order.carrier})" if order.carrier else "")]
    address: dict[str, Any] = order.shipping_address or {}
    if address:
        parts = [address.get("recipient_name"), address.get("address_line1"), address.get("address_line2"),
                 address.get("city"), address.get("postal_code")]
        lines += ["", "Shipping to: " + ", ".join(str(p) for p in parts if p)]
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines)
    return subject, text, f"<html><body>{body}</body></html>"


def render_low_stock(sku: str, name: str, stock: int, threshold: int) -> tuple[str, str]:
    subject = f"Low stock: {sku} ({stock} left)"
    text = f"{name} ({sku}) is down to {stock} unit(s); the low-stock threshold is {threshold}.\n"
    return subject, text
