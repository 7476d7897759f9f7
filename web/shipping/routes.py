"""`/carriers` (the carriers an order can ship with) and `/admin/shipments` (tracking as operators
see it: which shipments' carrier updates have been failing)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from models.shipping import queries
from web.api import Registry, run
from web.shipping.render import carriers_json, shipment_page
from web.shipping.schemas import CarrierList, ShipmentPage, ShipmentQuery

api = Registry()


@api.route(
    "GET",
    "/carriers",
    summary="The parcel carriers orders ship with, and their tracking pages",
    tags=["shipping"],
    response=CarrierList,
)
async def list_carriers(request: Request) -> dict[str, Any]:
    return carriers_json()


@api.route(
    "GET",
    "/admin/shipments",
    summary="Admin: shipments and their tracking; failing=true for the ones whose carrier updates keep failing",
    tags=["admin"],
    auth="admin",
    query=ShipmentQuery,
    response=ShipmentPage,
)
async def list_shipments(request: Request, query: ShipmentQuery) -> dict[str, Any]:
    page = await run(queries.shipments, query.failing, query.page, query.page_size)
    return shipment_page(page)
