"""Order totals, computed on the server from catalogue prices. Money is integer minor units.

Shipping fees and free-shipping thresholds are settings per currency (SHIPPING_*_FEE,
SHIPPING_*_FREE_OVER); the shop charges in CURRENCY, so the figures for that currency apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import validation_error
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


def shipping_methods() -> list[ShippingMethod]:
    """The methods a customer can choose, with this shop's fees (GET /shipping-methods)."""
    settings = get_settings()
    return [ShippingMethod(code, name, settings.shipping_fees[code], settings.shipping_free_over[code],
                           settings.currency) for code, name in SHIPPING_METHODS.items()]


def shipping_fee(method: str, subtotal: int) -> int:
    """The fee for method on a cart of this subtotal: waived once the subtotal reaches free_over."""
    settings = get_settings()
    free_over = settings.shipping_free_over[method]
    if free_over is not None and subtotal >= free_over:
        return 0
    return settings.shipping_fees[method]


def discount_codes() -> dict[str, str]:
    """DISCOUNT_CODES="WELCOME10=10%,SAVE5000=5000": a percentage or a fixed amount per code."""
    codes: dict[str, str] = {}
    for item in get_settings().discount_codes.split(","):
        code, _, value = item.partition("=")
        if code.strip() and value.strip():
            codes[code.strip().upper()] = value.strip()
    return codes


def discount_for(code: str | None, subtotal: int) -> tuple[int, str | None]:
    """(discount amount, normalised code); raises InvalidInput validation_error for an unknown code."""
    if not code:
        return 0, None
    normalised = code.strip().upper()
    rule = discount_codes().get(normalised)
    if rule is None:
        raise validation_error({"discount_code": "Unknown or expired discount code."})
    if rule.endswith("%"):
        amount = subtotal * int(rule[:-1]) // 100
    else:
        amount = int(rule)
    return min(amount, subtotal), normalised


def compute_totals(lines: list[tuple[int, int]], shipping_method: str, discount_code: str | None) -> Totals:
    """Totals for (unit_price, quantity) lines. Raises InvalidInput validation_error (discount code)."""
    subtotal = sum(price * qty for price, qty in lines)
    fee = shipping_fee(shipping_method, subtotal)
    discount, code = discount_for(discount_code, subtotal)
    return Totals(subtotal, fee, discount, subtotal - discount + fee, code)
