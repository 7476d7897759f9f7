"""Reviews as the contract's JSON: the storefront's view, and staff's with who wrote it and whether
it is hidden."""

from __future__ import annotations

from typing import Any

from models.reviews.service import Review, ReviewPage
from web.render import iso


def review_json(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "rating": review.rating,
        "title": review.title,
        "body": review.body,
        "author_name": review.author_name,
        "created_at": iso(review.created_at),
    }


def admin_review_json(review: Review) -> dict[str, Any]:
    return {
        **review_json(review),
        "product_id": review.product_id,
        "user_id": review.user_id,
        "order_id": review.order_id,
        "hidden": review.hidden,
        "updated_at": iso(review.updated_at),
    }


def review_page(page: ReviewPage) -> dict[str, Any]:
    return {
        "items": [review_json(r) for r in page.items],
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": page.pages,
    }
