"""`/admin/discounts`: staff's discount codes (the checkout and quotes read them through
models/orders/pricing.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from models.discounts import admin as discounts
from models.infra.settings import get_settings
from web.api import Registry, run
from web.discounts.render import discount_json, discount_page
from web.discounts.schemas import DiscountIn, DiscountOut, DiscountPageOut, DiscountPatch, DiscountQuery

api = Registry()
TAGS = ["admin"]


def _currency() -> str:
    return get_settings().currency


@api.route(
    "GET",
    "/admin/discounts",
    summary="Discount codes, newest first",
    tags=TAGS,
    auth="admin",
    query=DiscountQuery,
    response=DiscountPageOut,
)
async def list_discounts(request: Request, query: DiscountQuery) -> dict[str, Any]:
    page = await run(discounts.list_discounts, query.page, query.page_size, query.active, query.q)
    return discount_page(page, _currency())


@api.route(
    "POST",
    "/admin/discounts",
    summary="Create a discount code",
    tags=TAGS,
    auth="admin",
    body=DiscountIn,
    response=DiscountOut,
    status=201,
    errors=["discount_code_taken"],
)
async def create_discount(request: Request, body: DiscountIn) -> dict[str, Any]:
    return discount_json(await run(discounts.create_discount, body.model_dump()), _currency())


@api.route(
    "GET",
    "/admin/discounts/{discount_id:int}",
    summary="One discount code",
    tags=TAGS,
    auth="admin",
    response=DiscountOut,
    errors=["discount_not_found"],
)
async def get_discount(request: Request, discount_id: int) -> dict[str, Any]:
    return discount_json(await run(discounts.get_discount, discount_id), _currency())


@api.route(
    "PATCH",
    "/admin/discounts/{discount_id:int}",
    summary="Change a discount code (used_count is the pipeline's)",
    tags=TAGS,
    auth="admin",
    body=DiscountPatch,
    response=DiscountOut,
    errors=["discount_not_found", "discount_code_taken"],
)
async def update_discount(request: Request, discount_id: int, body: DiscountPatch) -> dict[str, Any]:
    row = await run(discounts.update_discount, discount_id, body.model_dump(exclude_unset=True))
    return discount_json(row, _currency())


@api.route(
    "DELETE",
    "/admin/discounts/{discount_id:int}",
    summary="Delete a discount code; orders priced with it keep their code and amount",
    tags=TAGS,
    auth="admin",
    status=204,
    errors=["discount_not_found"],
)
async def delete_discount(request: Request, discount_id: int) -> Response:
    await run(discounts.delete_discount, discount_id)
    return Response(status_code=204)
