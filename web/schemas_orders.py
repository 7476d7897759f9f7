"""Response schemas of /orders, for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from web.schemas import Page


class OrderItemOut(BaseModel):
    id: int
    product_id: int | None = Field(description="null once the product was deleted; the snapshot stays")
    product_name: str
    product_sku: str
    product_image: str | None
    unit_price: int
    quantity: int
    subtotal: int
    currency: str


class OrderEventOut(BaseModel):
    type: str = Field(examples=["stock_reserved"])
    from_status: str | None
    to_status: str | None
    at: datetime
    detail: dict[str, Any]
    task_id: str | None = Field(description="the Celery task that made the change, when a task did")


class PaymentOut(BaseModel):
    gateway: str
    amount: int
    currency: str
    status: str
    transaction_id: str | None
    next_action: dict[str, Any] | None = Field(
        description="dummy {type: token}; toss {type: toss_widget, client_key, order_id, order_name, amount}; "
                    "stripe {type: stripe_confirm, client_secret, payment_intent_id, publishable_key}. "
                    "null until the gateway has prepared the payment, a moment after the order turns reserved "
                    "(the order's ETag changes again when it is set), and once it is no longer reserved.")


class OrderSummaryOut(BaseModel):
    id: int
    order_number: str
    status: str
    payment_status: str
    currency: str
    item_count: int
    subtotal: int
    shipping_fee: int
    discount_amount: int
    total: int
    shipping_method: str
    payment_method: str
    version: int
    created_at: datetime
    updated_at: datetime


class OrderOut(OrderSummaryOut):
    user_id: int
    items: list[OrderItemOut]
    shipping_address: dict[str, Any]
    tracking_number: str | None
    carrier: str | None
    discount_code: str | None
    failure_reason: str | None = Field(description="out_of_stock or payment_declined when status is failed")
    failure_detail: dict[str, Any] | None
    reserved_until: datetime | None
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    payment: PaymentOut
    events: list[OrderEventOut]


class OrderPage(Page):
    items: list[OrderSummaryOut]


class OrderStatusOut(BaseModel):
    id: int
    order_number: str
    status: str
    payment_status: str
    version: int
    updated_at: datetime
