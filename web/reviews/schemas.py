"""Request, query and response schemas of product reviews and their moderation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool

from web.schemas import Page, Strict

Rating = Annotated[int, Field(strict=True, ge=1, le=5)]


class ReviewIn(Strict):
    rating: Rating = Field(description="1 (poor) to 5 (excellent)")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000)


class ReviewHiddenIn(Strict):
    hidden: StrictBool = Field(description="true hides the review from the storefront; false publishes it again")


class ReviewQuery(Strict):
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=10, ge=1, le=50)


class ReviewOut(BaseModel):
    id: int
    rating: int
    title: str
    body: str
    author_name: str
    created_at: datetime


class ReviewPageOut(Page):
    items: list[ReviewOut]


class AdminReviewOut(ReviewOut):
    product_id: int
    user_id: int
    order_id: int | None = Field(description="the delivered order that made the customer eligible")
    hidden: bool
    updated_at: datetime
