"""Products as the contract's JSON (kept cheap: listings call these per row)."""

from __future__ import annotations

from typing import Any

from models.catalog.queries import ProductPage
from web.render import iso

_ADMIN_ONLY = ("cost_price",)


def product_json(row: dict[str, Any], is_admin: bool, currency: str) -> dict[str, Any]:
    """A product row (models.catalog.PRODUCT_COLUMNS) as the API shows it to this caller."""
    out = dict(row)
    tracked = row["track_inventory"]
    stock = row["stock_quantity"]
    out["currency"] = currency
    out["available_quantity"] = stock if tracked else None
    out["in_stock"] = not tracked or stock > 0
    count, rating_sum = row["rating_count"], out.pop("rating_sum")
    out["rating_average"] = round(rating_sum / count, 2) if count else None
    out["created_at"] = iso(row["created_at"])
    out["updated_at"] = iso(row["updated_at"])
    if is_admin:
        out["low_stock"] = tracked and stock <= row["low_stock_threshold"]
    else:
        for name in _ADMIN_ONLY:
            out.pop(name, None)
    return out


def product_page_json(page: ProductPage, is_admin: bool, currency: str) -> dict[str, Any]:
    return {
        "items": [product_json(row, is_admin, currency) for row in page.items],
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": page.pages,
    }
