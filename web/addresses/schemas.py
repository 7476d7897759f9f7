"""Request and response schemas of /addresses; the address fields are also the checkout's
shipping_address, so both are validated by one model."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool, field_validator

from web.schemas import Phone, PostalCode, Strict, not_null


class AddressFields(Strict):
    """An address's fields and their checks: the address book's and the checkout's shipping_address."""

    recipient_name: str = Field(min_length=1, max_length=100)
    phone: Phone
    postal_code: PostalCode
    address_line1: str = Field(min_length=1, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)


class AddressIn(AddressFields):
    is_default: StrictBool | None = Field(
        default=None, description="Omitted: true for the first address only. true clears the previous default."
    )


class AddressPatch(Strict):
    recipient_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: Phone | None = None
    postal_code: PostalCode | None = None
    address_line1: str | None = Field(default=None, min_length=1, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    is_default: StrictBool | None = None

    refuse_null = field_validator("recipient_name", "phone", "postal_code", "address_line1", "city", "is_default")(
        not_null
    )


class AddressOut(BaseModel):
    id: int
    recipient_name: str
    phone: str
    postal_code: str
    address_line1: str
    address_line2: str | None
    city: str
    is_default: bool
    created_at: datetime
    updated_at: datetime


class AddressListOut(BaseModel):
    items: list[AddressOut] = Field(description="The default address first, then oldest first.")
