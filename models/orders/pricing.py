"""Order totals, computed on the server from catalogue prices and the discount table: the one
function behind both a quote and an order (models/orders/quote.py), so they agree. Money is integer
minor units.

Shipping fees and free-shipping thresholds are settings per currency (SHIPPING_*_FEE,
SHIPPING_*_FREE_OVER); the shop charges in CURRENCY, so the figures for that currency apply.
Discount codes are data (/admin/discounts, models/discounts/rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.discounts import rules
from models.infra.settings import get_settings

SHIPPING_METHODS = {"standard": "Standard delivery", "express": "Express delivery"}


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    name: str
    fee: int
    free_over: int | None  # the fee is waived from this subtotal on; None: never
    currency: str


@dataclass(frozen=True)
class Totals:
    subtotal: int
    shipping_fee: int
    discount_amount: int
    total: int
    discount_code: str | None
    discount_id: int | None = None


def shipping_methods() -> list[ShippingMethod]:
    """The methods a customer can choose, with this shop's fees (GET /shipping-methods)."""
    settings = get_settings()
    return [
        ShippingMethod(code, name, settings.shipping_fees[code], settings.shipping_free_over[code], settings.currency)
        for code, name in SHIPPING_METHODS.items()
    ]


def shipping_fee(method: str, subtotal: int) -> int:
    """The fee for method on a cart of this subtotal: waived once the subtotal reaches free_over."""
    settings = get_settings()
    free_over = settings.shipping_free_over[method]
    if free_over is not None and subtotal >= free_over:
        return 0
    return settings.shipping_fees[method]


def compute_totals(
    lines: list[tuple[int, int]],
    shipping_method: str,
    discount_code: str | None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> Totals:
    """Totals for (unit_price, quantity) lines; the discount applies to the subtotal, not shipping.
    user_id: the signed-in customer (None: a guest or an anonymous quote).

    Raises DiscountRefused (models/discounts/rules.py) discount_invalid / discount_expired /
    discount_exhausted / discount_min_subtotal for a code this customer cannot use now.
    """
    subtotal = sum(price * qty for price, qty in lines)
    fee = shipping_fee(shipping_method, subtotal)
    if not discount_code or not discount_code.strip():
        return Totals(subtotal, fee, 0, subtotal + fee, None)
    offer = rules.offer(discount_code, subtotal, user_id, now)
    return Totals(subtotal, fee, offer.amount, subtotal - offer.amount + fee, offer.code, offer.discount_id)
