"""Request and response schemas of /orders (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, GetJsonSchemaHandler, TypeAdapter, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from models.orders.states import STATUSES, PaymentStatus
from web.addresses.schemas import AddressFields
from web.schemas import DiscountCode, Id, Money, Page, Phone, ShippingMethodCode, Strict
from web.shipping.schemas import TrackingOut

OrderStatus = Literal[STATUSES]  # type: ignore[valid-type]
PaymentStatusValue = Literal[tuple(status.value for status in PaymentStatus)]  # type: ignore[valid-type]


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


class TokenAction(BaseModel):
    """dummy: send POST /orders/{id}/pay {token}."""

    type: Literal["token"]


class TossWidgetAction(BaseModel):
    """toss: open the TossPayments widget with these, then send {payment_key, amount} to /pay."""

    type: Literal["toss_widget"]
    client_key: str
    order_id: str = Field(description="the order_number")
    order_name: str
    amount: int
    customer_email: str | None = None
    customer_name: str | None = None


class StripeConfirmAction(BaseModel):
    """stripe: confirm the PaymentIntent with Stripe.js, then send {payment_intent_id} to /pay."""

    type: Literal["stripe_confirm"]
    client_secret: str
    payment_intent_id: str
    publishable_key: str


NextAction = Annotated[TokenAction | TossWidgetAction | StripeConfirmAction, Field(discriminator="type")]


class PaymentOut(BaseModel):
    gateway: Literal["dummy", "stripe", "toss"]
    amount: int
    currency: str
    status: PaymentStatusValue
    transaction_id: str | None
    next_action: NextAction | None = Field(
        description="What the client does to pay, by gateway (`type` says which). With dummy and toss it is "
        "set as the order turns reserved; with stripe it is null until Stripe has prepared the payment, a "
        "moment later (the order's ETag changes again when it is set). null again once the order is paid, "
        "waiting for a deposit, or no longer reserved. Always null for an order whose total is 0: it needs no "
        "payment, and is confirmed as soon as its stock is reserved."
    )
    virtual_account: VirtualAccountOut | None = Field(
        default=None,
        description="toss virtual accounts (가상계좌): where and by when to transfer the amount, "
        "while payment status is awaiting_deposit and after",
    )


class OrderSummaryOut(BaseModel):
    id: int
    order_number: str
    status: OrderStatus
    payment_status: PaymentStatusValue
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
    failure_reason: str | None = Field(
        description="when status is failed: out_of_stock, payment_declined, or "
        "discount_exhausted (the code was used up between placing the "
        "order and reserving its stock; nothing was charged)"
    )
    failure_detail: dict[str, Any] | None = Field(
        description="out_of_stock: {lines: [{product_id, sku, requested, available}]}, the lines that could "
        "not be reserved; product_id is null for a product deleted since the order was placed"
    )
    reserved_until: datetime | None
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    payment: PaymentOut
    events: list[OrderEventOut]
    tracking: TrackingOut | None = Field(description="where the carrier says the parcel is; null until shipped")
    payment_flag: PaymentFlagOut | None = Field(
        default=None,
        description="admins only: what a person must resolve about the payment (a refund the gateway "
        "declined, ...), also listed at GET /admin/payments/flagged; null when nothing",
    )


class OrderPage(Page):
    items: list[OrderSummaryOut]


class OrderStatusOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "order_number": "ORD-20261130-7UAWRK7B",
                    "status": "reserved",
                    "payment_status": "pending",
                    "version": 3,
                    "updated_at": "2026-11-30T09:00:00+00:00",
                }
            ]
        }
    )

    id: int
    order_number: str
    status: OrderStatus
    payment_status: PaymentStatusValue
    version: int
    updated_at: datetime


class GuestIn(Strict):
    email: EmailStr = Field(
        max_length=254,
        description="Where the order's emails go; with the order number it "
        "finds the order again (POST /orders/lookup).",
    )
    phone: Phone
    full_name: str = Field(min_length=1, max_length=100)


class CheckoutIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "shipping_address": {
                        "recipient_name": "Kim Minji",
                        "phone": "010-1234-5678",
                        "postal_code": "04524",
                        "address_line1": "1 Sejong-daero",
                        "city": "Seoul",
                    },
                    "shipping_method": "standard",
                    "payment_method": "dummy",
                },
                {"address_id": 7, "shipping_method": "express", "payment_method": "toss", "discount_code": "WELCOME10"},
            ]
        }
    )

    guest: GuestIn | None = Field(
        default=None,
        description="Checkout without an account (no Authorization "
        "header): who the order is for. Guests give "
        "shipping_address, not address_id.",
    )
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
    order_token: str | None = Field(
        default=None,
        description=(
            "Guest checkout only: a Bearer token for this order's GET /orders/{id}, /status, /pay and DELETE, and "
            "nothing else. It expires after ORDER_TOKEN_TTL; POST /orders/lookup issues a fresh one."
        ),
    )


class LookupIn(Strict):
    order_number: str = Field(min_length=1, max_length=40, examples=["ORD-20261130-ABCD2345"])
    email: EmailStr = Field(max_length=254)


class LookupOut(BaseModel):
    order_id: int
    order_token: str = Field(description="As CheckoutOut.order_token.")


class DummyPayIn(Strict):
    """dummy: tok_ok succeeds, tok_decline is declined, tok_error fails transiently once."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "tok_ok"}]})
    token: str = Field(max_length=200)


class TossPayIn(Strict):
    """toss: the paymentKey the widget returned, and the amount it charged (must be the order total)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"payment_key": "tgen_20261130abcd", "amount": 39000}]})
    payment_key: str = Field(max_length=200)
    amount: Money


class StripePayIn(Strict):
    """stripe: the PaymentIntent confirmed with Stripe.js (created with manual capture)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"payment_intent_id": "pi_3Nabc123"}]})
    payment_intent_id: str = Field(max_length=200)


class PayIn(Strict):
    """The payment proof. Parsed leniently here (the order's gateway checks its own fields), and
    documented as exactly one of the gateways' bodies (DummyPayIn, TossPayIn, StripePayIn)."""

    token: str | None = Field(default=None, max_length=200, description="dummy gateway")
    payment_key: str | None = Field(default=None, max_length=200, description="toss")
    amount: Money | None = Field(default=None, description="toss: must equal the order total")
    payment_intent_id: str | None = Field(default=None, max_length=200, description="stripe")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        union = handler(TypeAdapter(DummyPayIn | TossPayIn | StripePayIn).core_schema)
        return {"oneOf": union["anyOf"], "description": "One gateway's body: the order's payment_method decides"}


class OrderListQuery(Strict):
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]


class AdminUpdateIn(Strict):
    # Any order status: one the admin may not set is the contract's 409 invalid_transition.
    status: OrderStatus = Field(
        description="shipped, delivered or cancelled: what an administrator sets; any other order status "
        "is 409 invalid_transition (the pipeline alone reserves, confirms, fails and expires orders)"
    )
    tracking_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=("required to ship: 6-30 letters or digits, spaces and hyphens ignored"),
    )
    carrier: str | None = Field(
        default=None,
        max_length=64,
        description=("required to ship: a carrier code from GET /carriers (422 otherwise)"),
        examples=["04"],
    )


class StatusQuery(Strict):
    wait: float = Field(
        default=0,
        ge=0,
        le=30,
        description=(
            "Long poll: with If-None-Match, hold the request up to this many seconds until the order "
            "changes (then 200) or the time is up (then 304)."
        ),
    )
