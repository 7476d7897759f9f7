"""Request, query and response schemas of /admin/products/{id}/stock and its ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from web.schemas import Count, Page, Strict

MAX_DELTA = 1_000_000
Delta = Annotated[int, Field(strict=True, ge=-MAX_DELTA, le=MAX_DELTA)]


class StockChangeIn(Strict):
    delta: Delta | None = Field(default=None, description="Units to add (positive) or take away (negative).")
    set_to: Count | None = Field(
        default=None, alias="set", description="The count on hand after a stock take (reason adjustment only)."
    )
    reason: Literal["restock", "adjustment", "return"] = Field(
        description="restock and return add units (a positive delta); adjustment corrects either way."
    )
    note: str | None = Field(default=None, min_length=1, max_length=500, description="Why, for the ledger.")
    order_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="The order a return came from.")

    @model_validator(mode="after")
    def one_change(self) -> StockChangeIn:
        if (self.delta is None) == (self.set_to is None):
            raise ValueError("give exactly one of delta or set")
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        if self.reason in ("restock", "return") and (self.delta is None or self.delta < 0):
            raise ValueError(f"{self.reason} adds units: give a positive delta")
        return self


class LedgerQuery(Strict):
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=50, ge=1, le=200)


class LedgerEntryOut(BaseModel):
    id: int
    delta: int
    stock_after: int
    reason: Literal["initial", "reservation", "release", "restock", "adjustment", "return"]
    order_id: int | None
    actor: str = Field(description='"user:<id>", "task:<task name>" or "system:<what>"', examples=["user:7"])
    note: str | None
    at: datetime


class StockChangeOut(BaseModel):
    stock_quantity: int
    entry: LedgerEntryOut | None = Field(description="null when `set` named the count already on hand")


class LedgerPageOut(Page):
    product_id: int
    stock_quantity: int
    items: list[LedgerEntryOut]
