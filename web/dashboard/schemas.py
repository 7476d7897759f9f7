"""Query and response schemas of /admin/dashboard."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, model_validator

from web.schemas import Day

MAX_DAYS = 366


class DashboardQuery(BaseModel):
    from_: Day | None = Field(
        default=None,
        alias="from",
        description="First Asia/Seoul day (YYYY-MM-DD), included; default: 29 days before `to`.",
    )
    to: Day | None = Field(default=None, description="Last Asia/Seoul day, included; default: today in Seoul.")

    @model_validator(mode="after")
    def ordered(self) -> DashboardQuery:
        if self.from_ is not None and self.to is not None:
            if self.from_ > self.to:
                raise ValueError("`from` must not be after `to`")
            if (self.to - self.from_).days >= MAX_DAYS:
                raise ValueError(f"at most {MAX_DAYS} days at once")
        return self


class DayOut(BaseModel):
    day: date
    orders: int
    revenue: int


class TopProductOut(BaseModel):
    product_id: int | None = Field(description="null for lines of products deleted since")
    name: str
    units: int
    revenue: int


class LowStockOut(BaseModel):
    product_id: int
    sku: str
    name: str
    stock_quantity: int
    low_stock_threshold: int


class WaitingOut(BaseModel):
    count: int
    oldest_age_s: float | None = Field(description="seconds since the oldest order in this state was placed")


class PipelineOut(BaseModel):
    waiting: dict[str, WaitingOut] = Field(
        description="per state that is not final: pending, reserved, confirmed, shipped"
    )
    payments_flagged: int = Field(description="payments reconciliation flagged for a person")
    tracking_failing: int = Field(description="shipped orders whose carrier tracking fails")


class DashboardOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    timezone: str = Field(examples=["Asia/Seoul"])
    currency: str
    generated_at: datetime
    revenue_by_day: list[DayOut] = Field(
        description="every day of the window: orders paid that day (and not refunded since) and their totals"
    )
    totals: dict[str, int]
    orders_by_status: dict[str, int] = Field(description="orders placed in the window, by current status")
    top_products: list[TopProductOut] = Field(description="the 10 best sellers by units (then revenue)")
    top_products_by_revenue: list[TopProductOut]
    low_stock: list[LowStockOut] = Field(
        description="tracked products at or under their threshold, lowest first (at most 50)"
    )
    low_stock_total: int
    pipeline: PipelineOut
