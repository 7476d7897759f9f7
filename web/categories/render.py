"""Categories as the contract's JSON."""

from __future__ import annotations

from typing import Any

from models.catalog.categories import Category


def categories_json(categories: list[Category]) -> dict[str, Any]:
    return {"items": [{"slug": c.slug, "name": c.name, "product_count": c.product_count} for c in categories]}
