"""A discount's uses, claimed and given back like stock: claim when the order reserves stock (in that
transaction), release when the order fails, expires or is cancelled before shipping.

The claim is a conditional UPDATE of the counter (used_count < usage_limit), so however many orders
race for the last uses exactly usage_limit of them win; the per-customer counter is claimed the same
way (an upsert whose UPDATE is conditional), and CHECK constraints refuse anything beyond.
Lock order: products (by the caller), then the discount row, then the customer's counter.
"""

from __future__ import annotations

from models.discounts.rules import DiscountRefused
from models.infra.db import db
from models.tables import Order


def claim(order: Order) -> bool:
    """Take one use of the order's discount for its customer; True when the order now holds one,
    False when there is nothing to hold (no discount, or staff deleted it: the price stands).

    Raises DiscountRefused discount_exhausted when no use is left (the savepoint undoes the claim).
    """
    if order.discount_id is None:
        return False
    if order.discount_held:
        return True
    with db.atomic():
        row = db.execute_sql(
            """UPDATE discounts SET used_count = used_count + 1
               WHERE id = %s AND (usage_limit IS NULL OR used_count < usage_limit)
               RETURNING per_customer_limit""",
            (order.discount_id,),
        ).fetchone()
        if row is None:
            if not db.execute_sql("SELECT 1 FROM discounts WHERE id = %s", (order.discount_id,)).fetchone():
                return False
            raise DiscountRefused(
                "discount_exhausted",
                f"The discount code {order.discount_code} was used up "
                "before this order could be confirmed; order again without it.",
                field="discount_code",
                discount_code=order.discount_code,
            )
        (per_customer,) = row
        if order.user_id is None:
            return True
        claimed = db.execute_sql(
            """INSERT INTO discount_uses (discount_id, user_id, used_count) VALUES (%s, %s, 1)
               ON CONFLICT (discount_id, user_id) DO UPDATE SET used_count = discount_uses.used_count + 1
               WHERE %s::integer IS NULL OR discount_uses.used_count < %s::integer
               RETURNING used_count""",
            (order.discount_id, order.user_id, per_customer, per_customer),
        ).fetchone()
        if claimed is None:
            raise DiscountRefused(
                "discount_exhausted",
                f"You have already used the discount code "
                f"{order.discount_code} as often as it allows; order again without it.",
                field="discount_code",
                discount_code=order.discount_code,
                per_customer_limit=per_customer,
            )
    return True


def release(order: Order) -> None:
    """Give back the use the order holds (the undo of claim). Caller clears discount_held."""
    if order.discount_id is None or not order.discount_held:
        return
    db.execute_sql(
        "UPDATE discounts SET used_count = used_count - 1 WHERE id = %s AND used_count > 0", (order.discount_id,)
    )
    if order.user_id is not None:
        db.execute_sql(
            """UPDATE discount_uses SET used_count = used_count - 1
                          WHERE discount_id = %s AND user_id = %s AND used_count > 0""",
            (order.discount_id, order.user_id),
        )
