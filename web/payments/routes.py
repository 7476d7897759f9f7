"""`/payment-methods` (what a storefront may offer here) and `/admin/payments/flagged` (payments
that reconciliation could not settle alone: a person has to look)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from models.orders import payment_sync
from models.payments import payment_methods
from web.api import Registry, run
from web.payments.render import flagged_page
from web.payments.schemas import FlaggedPaymentPage, FlaggedQuery, PaymentMethodsOut

api = Registry()


@api.route(
    "GET",
    "/payment-methods",
    summary="The payment methods enabled on this shop (Toss only when CURRENCY is KRW)",
    tags=["payments"],
    response=PaymentMethodsOut,
)
async def list_payment_methods(request: Request) -> dict[str, Any]:
    return {"items": payment_methods()}


@api.route(
    "GET",
    "/admin/payments/flagged",
    summary="Admin: payments that need a person, newest flag first",
    tags=["admin"],
    auth="admin",
    query=FlaggedQuery,
    response=FlaggedPaymentPage,
)
async def list_flagged(request: Request, query: FlaggedQuery) -> dict[str, Any]:
    return flagged_page(await run(payment_sync.flagged, query.page, query.page_size))
