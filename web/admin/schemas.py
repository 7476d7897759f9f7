"""Query and response schemas of /admin/orders (the staff's order desk)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from models.orders.states import STATUSES, PaymentStatus
from web.orders.schemas import OrderOut, OrderSummaryOut, PaymentOut
from web.schemas import Page

DATE_MAX_LENGTH = 40


def _date_or_datetime(value: Any) -> Any:
    """'2026-11-30' is a date, '2026-11-30T09:00:00+09:00' a date-time; anything else is refused."""
    if not isinstance(value, str):
        return value
    if len(value) > DATE_MAX_LENGTH:
        raise ValueError(f"At most {DATE_MAX_LENGTH} characters.")
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("Expected an ISO date (2026-11-30) or date-time (2026-11-30T09:00:00+09:00).") from None


DateOrDateTime = Annotated[
    date | datetime,
    BeforeValidator(_date_or_datetime),
    WithJsonSchema(
        {"type": "string", "maxLength": DATE_MAX_LENGTH, "examples": ["2026-11-30", "2026-11-30T09:00:00+09:00"]}
    ),
]


class AdminOrderQuery(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    page: int = Field(default=1, ge=1, le=1_000_000, description="1-based.")
    page_size: int = Field(default=20, ge=1, le=100)
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    payment_status: Literal[tuple(PaymentStatus)] | None = None  # type: ignore[valid-type]
    created_from: DateOrDateTime | None = Field(
        default=None,
        description=("Orders created on or after this: a date (from its start, UTC) or a date-time with an offset."),
    )
    created_to: DateOrDateTime | None = Field(
        default=None,
        description=(
            "Orders created up to this: a date (to its end, UTC: the day is included) or a date-time with an offset."
        ),
    )
    q: str | None = Field(
        default=None,
        max_length=254,
        description=(
            "The start of an order number, of an email (the account's or a guest's) or of the recipient's name; "
            "case-insensitive."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k not in {"page", "page_size"} and v == "")}
        return data


class AdminOrderSummaryOut(OrderSummaryOut):
    user_id: int | None = Field(description="null for a guest's order")
    guest: bool
    email: str | None = Field(description="The customer's account email, or the guest's.")
    recipient_name: str | None


class AdminOrderPageOut(Page):
    items: list[AdminOrderSummaryOut]


class CustomerOut(BaseModel):
    user_id: int | None
    email: str | None
    full_name: str | None
    phone: str | None
    guest: bool


class EmailOut(BaseModel):
    kind: str = Field(examples=["confirmation"])
    recipient: str
    status: str = Field(description="pending until the SMTP server accepted it, then sent")
    attempts: int
    message_id: str
    created_at: datetime
    sent_at: datetime | None


class AdminPaymentOut(PaymentOut):
    """The customer's view of the payment, plus the gateway references an operator reconciles with."""

    transaction_id: str | None = Field(description="The gateway's reference for the payment.")
    proof: dict[str, Any] | None = Field(
        description="What the customer's client handed to /pay (token, payment key or intent id)."
    )
    next_action: dict[str, Any] | None = Field(description="As prepared by the gateway, whatever the status.")
    submitted_at: datetime | None
    paid_at: datetime | None


class AdminOrderOut(OrderOut):
    customer: CustomerOut
    payment: AdminPaymentOut
    emails: list[EmailOut] = Field(description="Every email the shop decided to send for this order, oldest first.")


class RedriveOut(BaseModel):
    sent: list[dict[str, Any]] = Field(
        description=(
            "Each follow-up the order's state said was due, handed to the pipeline: {command, task, ...its "
            "arguments}. Empty when nothing was due."
        )
    )
