"""Request and response schemas of /cart."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.infra.settings import get_settings
from web.schemas import DiscountCode, Id, ShippingMethodCode, Strict

MAX_LINE = get_settings().max_line_quantity


class CartItemIn(Strict):
    product_id: Id
    quantity: int = Field(strict=True, ge=1, le=MAX_LINE, description="Added to the line's current quantity.")


class CartQuantityIn(Strict):
    quantity: int = Field(strict=True, ge=0, le=MAX_LINE, description="The line's new quantity; 0 removes it.")


class CartLineOut(BaseModel):
    product_id: int
    name: str
    slug: str
    sku: str
    image: str | None
    unit_price: int = Field(description="The catalogue's current price.")
    quantity: int
    subtotal: int
    currency: str
    in_stock: bool = Field(
        description="Whether the quantity can be bought now (from the catalogue cache, "
        "which drops a product as soon as its stock changes; checkout "
        "checks again)."
    )
    available_quantity: int | None = Field(
        description="null when the product does not track inventory; "
        "like a product page, refreshed as soon as the "
        "stock changes."
    )


class CartOut(BaseModel):
    session_id: str | None = Field(
        description="The X-Session-ID sent; null for a customer's cart read with an access token alone."
    )
    items: list[CartLineOut] = Field(description="Products since deleted or unpublished are left out.")
    item_count: int
    subtotal: int
    currency: str
    updated_at: datetime | None = Field(description="The last write; null for an empty cart.")


class QuoteIn(Strict):
    shipping_method: ShippingMethodCode
    discount_code: DiscountCode | None = None


class QuoteOut(BaseModel):
    """What POST /orders would charge for this cart now (the same function prices both)."""

    subtotal: int
    shipping_fee: int = Field(description="0 once the subtotal reaches the method's free_over.")
    discount_amount: int
    total: int
    currency: str
    discount_code: str | None = Field(description="Normalised (upper case); null without a code.")
    shipping_method: str
    item_count: int
