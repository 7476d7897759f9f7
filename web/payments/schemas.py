"""Schemas of the payment resources: the methods a storefront may offer, and operators' flagged list."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from web.schemas import Page, Strict


class PaymentMethodOut(BaseModel):
    method: Literal["dummy", "stripe", "toss"]
    publishable_key: str | None = Field(default=None, description="stripe: for Stripe.js")
    client_key: str | None = Field(default=None, description="toss: for the payment widget")


class PaymentMethodsOut(BaseModel):
    items: list[PaymentMethodOut]


class FlaggedQuery(Strict):
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)


class FlaggedPaymentOut(BaseModel):
    order_id: int
    order_number: str
    status: str
    payment_status: str
    gateway: str
    transaction_id: str | None = Field(description="the Stripe intent or the Toss payment key")
    total: int
    currency: str
    flag: str = Field(description="what a person has to look at", examples=["refund needs a person: ..."])
    flagged_at: datetime | None
    updated_at: datetime


class FlaggedPaymentPage(Page):
    items: list[FlaggedPaymentOut]


class WebhookOut(BaseModel):
    received: bool
    duplicate: bool = Field(description="true when this event was handled before: nothing was done again")
