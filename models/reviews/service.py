"""Reviews: a customer with a delivered order of a product may review it once; staff hide or show.

Every write changes the product's rating_count and rating_sum in the same transaction, by the
review's own rating, and only when the review's published state really changed (a conditional
UPDATE of the review decides that), so the counters always equal a recount of the published
reviews without ever being recomputed. Updating the product row makes PostgreSQL announce the
change ('rating:<id>', migration 010), which drops the product's cached page everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peewee import IntegrityError

from models.errors import AuthError, Conflict, NotFound
from models.infra.db import db
from models.tables import User

MAX_ID = 2**31 - 1
REVIEW_COLUMNS = (
    "id",
    "product_id",
    "user_id",
    "order_id",
    "rating",
    "title",
    "body",
    "author_name",
    "hidden",
    "created_at",
    "updated_at",
)
_COLUMNS = ", ".join(REVIEW_COLUMNS)


@dataclass(frozen=True)
class Review:
    id: int
    product_id: int
    user_id: int
    order_id: int | None
    rating: int
    title: str
    body: str
    author_name: str
    hidden: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReviewPage:
    items: list[Review]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


def _not_found(product_id: int) -> NotFound:
    return NotFound("product_not_found", "No such product.", product_id=product_id)


def _rate(product_id: int, count: int, rating: int) -> None:
    """Add (count=1) or take away (count=-1) one published review's rating on the product row."""
    db.execute_sql(
        "UPDATE products SET rating_count = rating_count + %s, rating_sum = rating_sum + %s WHERE id = %s",
        (count, count * rating, product_id),
    )


def published(product_id: int, page: int, page_size: int) -> ReviewPage:
    """A published product's published reviews, newest first; the total is the product's
    rating_count (kept equal to the number of published reviews). Raises NotFound product_not_found."""
    if not 0 < product_id <= MAX_ID:
        raise _not_found(product_id)
    rows = db.execute_sql(
        f"""SELECT p.rating_count, r.* FROM products p
            LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM reviews WHERE product_id = p.id AND NOT hidden
                               ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s) AS r ON TRUE
            WHERE p.id = %s AND p.is_published ORDER BY r.created_at DESC, r.id DESC""",
        (page_size, (page - 1) * page_size, product_id),
    ).fetchall()
    if not rows:
        raise _not_found(product_id)
    return ReviewPage([Review(*row[1:]) for row in rows if row[1] is not None], page, page_size, int(rows[0][0]))


def _delivered_order(user_id: int, product_id: int) -> int | None:
    """The customer's latest delivered order holding the product, if any."""
    row = db.execute_sql(
        """SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id
           WHERE o.user_id = %s AND o.status = 'delivered' AND i.product_id = %s
           ORDER BY o.delivered_at DESC NULLS LAST, o.id DESC LIMIT 1""",
        (user_id, product_id),
    ).fetchone()
    return row[0] if row else None


def write(user: User, product_id: int, rating: int, title: str, body: str) -> Review:
    """The customer's one review of a product they received, published at once.

    Raises NotFound product_not_found, AuthError review_not_allowed (no delivered order of it),
    Conflict review_exists.
    """
    if not 0 < product_id <= MAX_ID:
        raise _not_found(product_id)
    try:
        with db.atomic():
            found = db.execute_sql("SELECT 1 FROM products WHERE id = %s AND is_published", (product_id,)).fetchone()
            if found is None:
                raise _not_found(product_id)
            order_id = _delivered_order(user.id, product_id)
            if order_id is None:
                raise AuthError(
                    "review_not_allowed",
                    "Only customers who have received this product can review it.",
                    product_id=product_id,
                )
            row = db.execute_sql(
                f"""INSERT INTO reviews (product_id, user_id, order_id, rating, title, body, author_name, hidden,
                                         created_at, updated_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, FALSE, now(), now()) RETURNING {_COLUMNS}""",
                (product_id, user.id, order_id, rating, title, body, user.full_name[:100]),
            ).fetchone()
            _rate(product_id, 1, rating)
    except IntegrityError as exc:
        if "reviews_product_id_user_id" in str(exc):
            raise Conflict("review_exists", "You have already reviewed this product.", product_id=product_id) from exc
        raise
    return Review(*row)


def set_hidden(review_id: int, hidden: bool) -> Review:
    """Hide a review from the storefront or publish it again (staff); the product's rating follows.

    Raises NotFound review_not_found.
    """
    if not 0 < review_id <= MAX_ID:
        raise NotFound("review_not_found", "No such review.", review_id=review_id)
    with db.atomic():
        changed = db.execute_sql(
            f"""UPDATE reviews SET hidden = %s, updated_at = now() WHERE id = %s AND hidden <> %s
                RETURNING {_COLUMNS}""",
            (hidden, review_id, hidden),
        ).fetchone()
        if changed is not None:
            review = Review(*changed)
            _rate(review.product_id, -1 if hidden else 1, review.rating)
            return review
        row = db.execute_sql(f"SELECT {_COLUMNS} FROM reviews WHERE id = %s", (review_id,)).fetchone()
    if row is None:
        raise NotFound("review_not_found", "No such review.", review_id=review_id)
    return Review(*row)


def recount() -> list[dict[str, Any]]:
    """Products whose rating counters differ from a recount of their published reviews (a check for
    tests and operators; empty when everything is in step)."""
    rows = db.execute_sql(
        """SELECT p.id, p.rating_count, p.rating_sum, COALESCE(r.n, 0), COALESCE(r.total, 0) FROM products p
           LEFT JOIN (SELECT product_id, count(*) AS n, sum(rating) AS total FROM reviews WHERE NOT hidden
                      GROUP BY product_id) AS r ON r.product_id = p.id
           WHERE p.rating_count <> COALESCE(r.n, 0) OR p.rating_sum <> COALESCE(r.total, 0)"""
    ).fetchall()
    return [
        {"product_id": pid, "rating_count": count, "rating_sum": total, "recount": int(n), "resum": int(s)}
        for pid, count, total, n, s in rows
    ]
