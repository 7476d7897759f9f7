"""Response schemas of /shipping-methods."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ShippingMethodOut(BaseModel):
    code: str = Field(
        examples=["standard"], description="What POST /orders and POST /cart/quote take as shipping_method."
    )
    name: str
    fee: int = Field(description="In the currency's minor unit.")
    free_over: int | None = Field(
        description="The fee is waived once the cart's subtotal (before discounts) reaches this; null: never waived."
    )
    currency: str


class ShippingMethodsOut(BaseModel):
    items: list[ShippingMethodOut]
