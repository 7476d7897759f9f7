"""Schemas every resource shares: the strict request base, the error body, pages, and field types
that match the columns they are stored in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


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
PostalCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=16, pattern=r"^[A-Za-z0-9 \-]{3,16}$")]
# A reference to a row: any id a column could hold is looked up (404 when absent), nothing larger.
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_INT8)]
# What both POST /cart/quote and POST /orders take to price a cart (one type: the same 422s).
ShippingMethodCode = Literal["standard", "express"]
DiscountCode = Annotated[str, Field(max_length=64)]


def at_most(characters: int) -> Callable[[Any], Any]:
    """A check before parsing: a text longer than `characters` is refused without being parsed."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > characters:
            raise ValueError(f"At most {characters} characters.")
        return value

    return check


def storable_offset(value: datetime) -> datetime:
    """An instant whose UTC offset PostgreSQL stores: at most 15:59 either way (ISO 8601 allows more)."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) >= timedelta(hours=16):
        raise ValueError("The UTC offset must be within -15:59 and +15:59.")
    return value


# An instant with its UTC offset ("2026-03-01T00:00:00+09:00") and a calendar day ("2026-03-01").
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(at_most(40)),
    AfterValidator(storable_offset),
    Field(json_schema_extra={"maxLength": 40}),
]
Day = Annotated[date, BeforeValidator(at_most(10)), Field(json_schema_extra={"maxLength": 10})]


def dedupe(values: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(values)) if values is not None else None


def not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("May not be null.")
    return value
