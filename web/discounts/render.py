"""Discounts as the contract's JSON."""

from __future__ import annotations

from typing import Any

from models.discounts.admin import DiscountPage
from models.tables import Discount
from web.render import iso


def discount_json(row: Discount, currency: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "kind": row.kind,
        "value": row.value,
        "min_subtotal": row.min_subtotal,
        "currency": currency,
        "starts_at": iso(row.starts_at),
        "ends_at": iso(row.ends_at),
        "usage_limit": row.usage_limit,
        "per_customer_limit": row.per_customer_limit,
        "used_count": row.used_count,
        "remaining": None if row.usage_limit is None else max(row.usage_limit - row.used_count, 0),
        "active": row.active,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def discount_page(page: DiscountPage, currency: str) -> dict[str, Any]:
    return {
        "items": [discount_json(row, currency) for row in page.items],
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": page.pages,
    }
