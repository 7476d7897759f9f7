"""Request, query and response schemas of /admin/discounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from web.schemas import MAX_INT4, MAX_MONEY, Count, Instant, Money, Page, Strict, not_null

Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
]
Value = Annotated[
    int, Field(strict=True, ge=1, le=MAX_MONEY, description="percent: 1-100; fixed: an amount in minor units")
]
Limit = Annotated[int, Field(strict=True, ge=1, le=MAX_INT4)]
Kind = Literal["percent", "fixed"]


class DiscountIn(Strict):
    code: Code = Field(description="Letters, digits, - and _; stored and matched in upper case.")
    kind: Kind
    value: Value
    min_subtotal: Money = Field(default=0, description="The cart's subtotal must be at least this.")
    starts_at: Instant | None = Field(default=None, description="Usable from (with a UTC offset).")
    ends_at: Instant | None = Field(default=None, description="Usable until, exclusive.")
    usage_limit: Count | None = Field(
        default=None, description="Orders that may hold it at once, in all; null: unlimited."
    )
    per_customer_limit: Limit | None = Field(default=None, description="Orders per customer; null: unlimited.")
    active: StrictBool = True


class DiscountPatch(Strict):
    """Only the fields sent change; starts_at, ends_at and the limits may be set to null."""

    code: Code | None = None
    kind: Kind | None = None
    value: Value | None = None
    min_subtotal: Money | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    usage_limit: Count | None = None
    per_customer_limit: Limit | None = None
    active: StrictBool | None = None

    refuse_null = field_validator("code", "kind", "value", "min_subtotal", "active")(not_null)


class DiscountQuery(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=20, ge=1, le=100)
    active: bool | None = None
    q: str | None = Field(default=None, max_length=64, description="Part of the code.")


class DiscountOut(BaseModel):
    id: int
    code: str
    kind: Kind
    value: int
    min_subtotal: int
    currency: str
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    used_count: int = Field(
        description="Orders holding a use now: claimed when an order reserves stock, given "
        "back when it fails, expires or is cancelled before shipping."
    )
    remaining: int | None = Field(description="usage_limit - used_count; null when unlimited.")
    active: bool
    created_at: datetime
    updated_at: datetime


class DiscountPageOut(Page):
    items: list[DiscountOut]
