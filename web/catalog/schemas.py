"""Request, query and response schemas of /products (validation and OpenAPI).

JSON bodies take strict numbers and booleans ("12" is not a quantity); query strings are parsed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from models.catalog import slugs
from models.catalog.queries import MAX_WORDS, search_words, too_many_words
from web.schemas import MAX_MONEY, Count, Money, Page, Strict, dedupe, not_null

Sku = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
]


def _slug(value: str) -> str:
    """A slug sent by an administrator, made canonical as stored slugs are (models/catalog/slugs.py)."""
    slug = slugs.canonical(value)
    if not slugs.is_valid(slug):
        raise ValueError(
            f"Letters and digits, in runs joined by single hyphens, at most {slugs.MAX_LENGTH} characters "
            "(e.g. linen-shirt)."
        )
    return slug


# Checked by models/catalog/slugs.py, the definition slugify() follows, so a derived slug sent back
# is always accepted; the pattern is documented for clients (its \w: letters and digits of any script).
Slug = Annotated[
    str,
    AfterValidator(_slug),
    Field(json_schema_extra={"pattern": slugs.SLUG_PATTERN, "maxLength": slugs.MAX_LENGTH}),
]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
ImageUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=r"^(https?://|/)\S+$")]
ProductSort = Literal["-created_at", "created_at", "price", "-price", "name"]


class ProductIn(Strict):
    sku: Sku
    name: str = Field(min_length=1, max_length=200)
    slug: Slug | None = Field(default=None, description="Derived from the name when omitted.")
    description: str = Field(default="", max_length=20000)
    price: Money
    compare_at_price: Money | None = Field(default=None, description="When set, above price.")
    cost_price: Money | None = None
    stock_quantity: Count = 0
    low_stock_threshold: Count = 5
    track_inventory: StrictBool = True
    category: str | None = Field(default=None, min_length=1, max_length=100)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    images: list[ImageUrl] = Field(default_factory=list, max_length=20)
    is_published: StrictBool = True
    is_featured: StrictBool = False

    dedupe_tags = field_validator("tags")(dedupe)


class ProductPatch(Strict):
    """Only the fields sent change; compare_at_price, cost_price and category may be set to null."""

    sku: Sku | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: Slug | None = None
    description: str | None = Field(default=None, max_length=20000)
    price: Money | None = None
    compare_at_price: Money | None = None
    cost_price: Money | None = None
    stock_quantity: Count | None = Field(
        default=None,
        description="Recorded in the stock ledger as an adjustment; POST /admin/products/{id}/stock takes a reason.",
    )
    low_stock_threshold: Count | None = None
    track_inventory: StrictBool | None = None
    category: str | None = Field(default=None, min_length=1, max_length=100)
    tags: list[Tag] | None = Field(default=None, max_length=20)
    images: list[ImageUrl] | None = Field(default=None, max_length=20)
    is_published: StrictBool | None = None
    is_featured: StrictBool | None = None

    dedupe_tags = field_validator("tags")(dedupe)
    refuse_null = field_validator(
        "sku",
        "name",
        "slug",
        "description",
        "price",
        "stock_quantity",
        "low_stock_threshold",
        "track_inventory",
        "tags",
        "images",
        "is_published",
        "is_featured",
    )(not_null)


class ProductQuery(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    page: int = Field(default=1, ge=1, le=1_000_000, description="1-based.")
    page_size: int = Field(default=20, ge=1, le=100)
    category: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, max_length=50)
    q: str | None = Field(
        default=None,
        max_length=200,
        description=(
            "Word-wise search in name and description: every word appears, in any order, as a substring; "
            'case-insensitive, Korean included ("셔츠" finds "린넨셔츠"). Words are split on spaces and on '
            'punctuation but % and _ ("linen-shirt." is linen and shirt; "50%" is one word), each counted once '
            f"in any case; at most {MAX_WORDS} different words (more: 422 validation_error on q, nothing "
            "ignored)."
        ),
    )
    min_price: int | None = Field(default=None, ge=0, le=MAX_MONEY)
    max_price: int | None = Field(default=None, ge=0, le=MAX_MONEY)
    in_stock: bool | None = None
    featured: bool | None = None
    low_stock: bool | None = Field(default=None, description="Admins only: at or under low_stock_threshold.")
    published: bool | None = Field(default=None, description="Admins only (others always see published only).")
    sort: ProductSort = Field(default="-created_at", description="Ties are broken by id, so pages are stable.")

    @field_validator("q")
    @classmethod
    def _few_enough_words(cls, q: str | None) -> str | None:
        # Refused here, before the cache or the database; list_products refuses it the same way.
        refusal = too_many_words(search_words(q)) if q else None
        if refusal:
            raise ValueError(refusal)
        return q

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        # `?category=` from an HTML form means "not filtered".
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k not in {"page", "page_size", "sort"} and v == "")}
        return data


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    slug: str
    description: str
    price: int
    compare_at_price: int | None
    cost_price: int | None = Field(default=None, description="Present for administrators only.")
    currency: str = Field(examples=["KRW"])
    stock_quantity: int
    available_quantity: int | None = Field(
        description="Units that can still be bought (stock not held by unpaid "
        "orders); null when track_inventory is false (unlimited). "
        "Anonymous reads are cached: a product page is "
        "refreshed as soon as its stock changes, a listing "
        "may lag reservations by CATALOG_CACHE_TTL seconds."
    )
    in_stock: bool
    low_stock_threshold: int
    low_stock: bool | None = Field(
        default=None, description="Present for administrators only: stock at or under low_stock_threshold."
    )
    track_inventory: bool
    category: str | None
    tags: list[str]
    images: list[str]
    is_published: bool
    is_featured: bool
    rating_average: float | None = Field(
        description="Mean rating of the published reviews, two decimals; null "
        "without any. Kept in step with every review write."
    )
    rating_count: int = Field(description="How many published reviews the product has.")
    created_at: datetime
    updated_at: datetime


class ProductPageOut(Page):
    items: list[ProductOut]
