"""Schemas every resource shares: the strict request base, the error body, pages, and field types
that match the columns they are stored in."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Error(BaseModel):
    error: ErrorBody


class Page(BaseModel):
    page: int
    page_size: int
    total: int
    pages: int


MAX_MONEY = 10**12
MAX_INT4 = 2**31 - 1
MAX_INT8 = 2**63 - 1

Money = Annotated[int, Field(strict=True, ge=0, le=MAX_MONEY)]
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_INT4)]
# Limits match the columns they are stored in (tests/test_input_limits_match_the_columns.py).
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^\+?[0-9 \-()]{6,32}$")]
PostalCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=16,
                                              pattern=r"^[A-Za-z0-9 \-]{3,16}$")]
# A reference to a row: any id a column could hold is looked up (404 when absent), nothing larger.
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_INT8)]
# What both POST /cart/quote and POST /orders take to price a cart (one type: the same 422s).
ShippingMethodCode = Literal["standard", "express"]
DiscountCode = Annotated[str, Field(max_length=64)]


def dedupe(values: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(values)) if values is not None else None


def not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("May not be null.")
    return value
