"""Request and response schemas of /orders (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, EmailStr, Field, model_validator

from models.orders.states import ADMIN_TARGETS, STATUSES
from web.addresses.schemas import AddressFields
from web.schemas import DiscountCode, Id, Money, Page, Phone, ShippingMethodCode, Strict
from web.shipping.schemas import TrackingOut


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


class VirtualAccountOut(BaseModel):
    bank: str | None = Field(examples=["우리은행"])
    bank_code: str | None = Field(examples=["20"])
    account_number: str | None
    due_date: datetime | None = Field(description="the order expires, and its stock is released, after this")
    holder: str | None = Field(description="the name the account is issued in")


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
                    "(the order's ETag changes again when it is set), and once it is paid, waiting for a "
                    "deposit, or no longer reserved.")
    virtual_account: VirtualAccountOut | None = Field(
        default=None, description="toss virtual accounts (가상계좌): where and by when to transfer the amount, "
                                  "while payment status is awaiting_deposit and after")


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


class PaymentFlagOut(BaseModel):
    reason: str = Field(description="why the payment needs a person", examples=["refund declined by the gateway: ..."])
    flagged_at: datetime | None


class GuestOut(BaseModel):
    email: str
    phone: str
    full_name: str


class OrderOut(OrderSummaryOut):
    user_id: int | None = Field(description="null for a guest's order")
    guest: GuestOut | None = Field(description="Who a guest's order is for; null for a customer's order.")
    items: list[OrderItemOut]
    shipping_address: dict[str, Any]
    tracking_number: str | None
    carrier: str | None
    discount_code: str | None
    failure_reason: str | None = Field(description="when status is failed: out_of_stock, payment_declined, or "
                                                   "discount_exhausted (the code was used up between placing the "
                                                   "order and reserving its stock; nothing was charged)")
    failure_detail: dict[str, Any] | None
    reserved_until: datetime | None
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    payment: PaymentOut
    events: list[OrderEventOut]
    tracking: TrackingOut | None = Field(description="where the carrier says the parcel is; null until shipped")
    payment_flag: PaymentFlagOut | None = Field(
        default=None, description="admins only: what a person must resolve about the payment (a refund the gateway "
                                  "declined, ...), also listed at GET /admin/payments/flagged; null when nothing")


class OrderPage(Page):
    items: list[OrderSummaryOut]


class OrderStatusOut(BaseModel):
    id: int
    order_number: str
    status: str
    payment_status: str
    version: int
    updated_at: datetime


class GuestIn(Strict):
    email: EmailStr = Field(max_length=254, description="Where the order's emails go; with the order number it "
                                                        "finds the order again (POST /orders/lookup).")
    phone: Phone
    full_name: str = Field(min_length=1, max_length=100)


class CheckoutIn(Strict):
    guest: GuestIn | None = Field(default=None, description="Checkout without an account (no Authorization "
                                                            "header): who the order is for. Guests give "
                                                            "shipping_address, not address_id.")
    shipping_address: AddressFields | None = None
    address_id: Id | None = None
    shipping_method: ShippingMethodCode
    payment_method: Literal["dummy", "stripe", "toss"]
    discount_code: DiscountCode | None = None

    @model_validator(mode="after")
    def one_address(self) -> CheckoutIn:
        if (self.shipping_address is None) == (self.address_id is None):
            raise ValueError("give exactly one of shipping_address or address_id")
        return self


class CheckoutOut(OrderOut):
    order_token: str | None = Field(default=None, description=(
        "Guest checkout only: a Bearer token for this order's GET /orders/{id}, /status, /pay and DELETE, and "
        "nothing else. It expires after ORDER_TOKEN_TTL; POST /orders/lookup issues a fresh one."))


class LookupIn(Strict):
    order_number: str = Field(min_length=1, max_length=40, examples=["ORD-20261130-ABCD2345"])
    email: EmailStr = Field(max_length=254)


class LookupOut(BaseModel):
    order_id: int
    order_token: str = Field(description="As CheckoutOut.order_token.")


class PayIn(Strict):
    token: str | None = Field(default=None, max_length=200, description="dummy gateway")
    payment_key: str | None = Field(default=None, max_length=200, description="toss")
    amount: Money | None = Field(default=None, description="toss: must equal the order total")
    payment_intent_id: str | None = Field(default=None, max_length=200, description="stripe")


class OrderListQuery(Strict):
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]


class AdminUpdateIn(Strict):
    status: Literal[tuple(sorted(ADMIN_TARGETS))]  # type: ignore[valid-type]
    tracking_number: str | None = Field(default=None, min_length=1, max_length=64, description=(
        "required to ship: 6-30 letters or digits, spaces and hyphens ignored"))
    carrier: str | None = Field(default=None, max_length=64, description=(
        "required to ship: a carrier code from GET /carriers (422 otherwise)"), examples=["04"])


class StatusQuery(Strict):
    wait: float = Field(default=0, ge=0, le=30, description=(
        "Long poll: with If-None-Match, hold the request up to this many seconds until the order "
        "changes (then 200) or the time is up (then 304)."))
