"""`/shipping-methods`: what a storefront shows before checkout (fees and free-shipping thresholds
are settings; POST /cart/quote prices a cart with the same figures)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from models.orders import pricing
from web.api import Registry
from web.shipping_methods.render import methods_json
from web.shipping_methods.schemas import ShippingMethodsOut

api = Registry()
TAGS = ["checkout"]


@api.route(
    "GET",
    "/shipping-methods",
    summary="Shipping methods with their fee and free-shipping threshold",
    tags=TAGS,
    response=ShippingMethodsOut,
)
async def list_methods(request: Request) -> dict[str, Any]:
    return methods_json(pricing.shipping_methods())
