"""What a discount code takes off a subtotal, or why it takes nothing: the one check behind quotes
and orders (models/orders/pricing.py).

Validity (active, the start and end times, the minimum subtotal) is judged when the order is placed,
at the price the shopper was shown. The usage limits are judged here against the uses claimed so
far, and claimed for good only when the order reserves stock (redemption.py), where an order that
loses the race for the last use fails with discount_exhausted instead of being charged more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.errors import InvalidInput
from models.infra.db import db
from models.infra.settings import get_settings
from models.money import with_code
from models.tables import utcnow

CODES = ("discount_invalid", "discount_expired", "discount_exhausted", "discount_min_subtotal")


class DiscountRefused(InvalidInput):
    """A discount code that cannot be used on this order (422; the message is for the shopper)."""


@dataclass(frozen=True)
class Offer:
    discount_id: int
    code: str
    amount: int


def normalise(code: str) -> str:
    return code.strip().upper()


def money(amount: int) -> str:
    """An amount in the shop's currency for a shopper's message, by its minor units ('50.00 USD')."""
    return with_code(amount, get_settings().currency)


def amount_off(kind: str, value: int, subtotal: int) -> int:
    """percent: value% of the subtotal, rounded down; fixed: value, never more than the subtotal."""
    amount = subtotal * value // 100 if kind == "percent" else value
    return max(0, min(amount, subtotal))


def offer(code: str, subtotal: int, user_id: int | None, now: datetime | None = None) -> Offer:
    """What `code` takes off `subtotal` for this customer now (one query).

    user_id: the signed-in customer; None for a guest (or an anonymous quote), who cannot use a
    code limited per customer, since a guest's identity is only an email they type.
    Raises DiscountRefused discount_invalid (unknown, inactive, not started, limited per customer
    and no account), discount_expired, discount_exhausted (no uses left, in all or for this
    customer), discount_min_subtotal.
    """
    now = now or utcnow()
    normalised = normalise(code)
    row = db.execute_sql(
        """SELECT d.id, d.kind, d.value, d.min_subtotal, d.starts_at, d.ends_at, d.usage_limit,
                  d.per_customer_limit, d.used_count, d.active, COALESCE(u.used_count, 0)
           FROM discounts d LEFT JOIN discount_uses u ON u.discount_id = d.id AND u.user_id = %s
           WHERE d.code = %s""",
        (user_id, normalised),
    ).fetchone()
    details = {"field": "discount_code", "discount_code": normalised}
    if row is None or not row[9]:
        raise DiscountRefused("discount_invalid", f"The discount code {normalised} is not valid.", **details)
    (
        discount_id,
        kind,
        value,
        min_subtotal,
        starts_at,
        ends_at,
        usage_limit,
        per_customer,
        used,
        _active,
        used_by_customer,
    ) = row
    if starts_at is not None and now < starts_at:
        raise DiscountRefused(
            "discount_invalid",
            f"The discount code {normalised} can be used from {starts_at:%Y-%m-%d %H:%M} UTC.",
            starts_at=starts_at.isoformat(),
            **details,
        )
    if ends_at is not None and now >= ends_at:
        raise DiscountRefused(
            "discount_expired",
            f"The discount code {normalised} expired on {ends_at:%Y-%m-%d %H:%M} UTC.",
            ends_at=ends_at.isoformat(),
            **details,
        )
    if usage_limit is not None and used >= usage_limit:
        raise DiscountRefused("discount_exhausted", f"The discount code {normalised} has been used up.", **details)
    if per_customer is not None and user_id is None:
        raise DiscountRefused(
            "discount_invalid",
            f"The discount code {normalised} is for customers with an account: sign in to use it.",
            per_customer_limit=per_customer,
            **details,
        )
    if per_customer is not None and used_by_customer >= per_customer:
        times = "once" if per_customer == 1 else f"{per_customer} times"
        raise DiscountRefused(
            "discount_exhausted",
            f"You have already used the discount code {normalised}; it can be used {times} per customer.",
            per_customer_limit=per_customer,
            **details,
        )
    if subtotal < min_subtotal:
        raise DiscountRefused(
            "discount_min_subtotal",
            f"The discount code {normalised} needs a subtotal of at "
            f"least {money(min_subtotal)}; add {money(min_subtotal - subtotal)} more to use it.",
            min_subtotal=min_subtotal,
            subtotal=subtotal,
            **details,
        )
    return Offer(discount_id, normalised, amount_off(kind, value, subtotal))
