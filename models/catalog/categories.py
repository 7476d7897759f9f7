"""The catalogue's categories, as a storefront's navigation shows them: each category that has a
published product, with how many it has. A category is the products.category value (the slug the
`category` filter of GET /products takes); its display name is derived from it."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import fn

from models.infra.db import tuples
from models.tables import Product


@dataclass(frozen=True)
class Category:
    slug: str
    name: str
    product_count: int


def display_name(slug: str) -> str:
    """ "home-fragrance" -> "Home fragrance"; a name in another script stays as it is."""
    text = slug.replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else slug


def list_categories() -> list[Category]:
    """Categories with published products, by slug, each with its number of published products."""
    rows = tuples(
        Product.select(Product.category, fn.COUNT(Product.id))
        .where(Product.is_published == True, Product.category.is_null(False))  # noqa: E712
        .group_by(Product.category)
        .order_by(Product.category)
    )
    return [Category(slug, display_name(slug), int(count)) for slug, count in rows]
