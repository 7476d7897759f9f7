"""Response schemas of /categories."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CategoryOut(BaseModel):
    slug: str = Field(description="What GET /products?category= takes.")
    name: str
    product_count: int = Field(description="Published products in the category.")


class CategoriesOut(BaseModel):
    items: list[CategoryOut] = Field(description="Categories with at least one published product, by slug.")
