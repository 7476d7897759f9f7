"""Order totals, computed on the server from catalogue prices. Money is integer minor units."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import validation_error
from models.infra.settings import get_settings

# Shipping fees in KRW (the shop's default currency); free standard shipping from 50,000.
SHIPPING_FEES = {"standard": 3000, "express": 6000}
FREE_STANDARD_FROM = 50000


@dataclass(frozen=True)
class Totals:
    subtotal: int
    shipping_fee: int
    discount_amount: int
    total: int
    discount_code: str | None


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
    """Totals for (unit_price, quantity) lines."""
    subtotal = sum(price * qty for price, qty in lines)
    fee = SHIPPING_FEES[shipping_method]
    if shipping_method == "standard" and subtotal >= FREE_STANDARD_FROM:
        fee = 0
    discount, code = discount_for(discount_code, subtotal)
    return Totals(subtotal, fee, discount, subtotal - discount + fee, code)
