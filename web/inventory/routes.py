"""`/admin/products/{id}/stock` and `/stock-ledger`: staff change stock with a reason, and read every
change a product's stock went through (reservations, releases, restocks, adjustments, returns)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from models.stock import admin as stock
from models.tables import User
from tasks.dispatch import perform
from web.api import Registry, run
from web.inventory.render import entry_json
from web.inventory.schemas import LedgerPageOut, LedgerQuery, StockChangeIn, StockChangeOut

api = Registry()
TAGS = ["admin"]


@api.route(
    "POST",
    "/admin/products/{product_id:int}/stock",
    summary="Restock, adjust or take back a return: by a delta or to a count; one ledger entry",
    tags=TAGS,
    auth="admin",
    body=StockChangeIn,
    response=StockChangeOut,
    errors=["product_not_found", "order_not_found", "insufficient_stock"],
)
async def change_stock(request: Request, user: User, product_id: int, body: StockChangeIn) -> dict[str, Any]:
    # perform: a change that crosses the low-stock threshold asks for the alert once committed.
    done = await run(
        perform,
        stock.adjust,
        product_id,
        f"user:{user.id}",
        body.reason,
        body.delta,
        body.set_to,
        body.note,
        body.order_id,
    )
    request.app.state.catalog.forget_product(product_id)  # here at once; PostgreSQL tells the other processes
    return {"stock_quantity": done.stock_quantity, "entry": entry_json(done.entry)}


@api.route(
    "GET",
    "/admin/products/{product_id:int}/stock-ledger",
    summary="Every change of a product's stock, newest first",
    tags=TAGS,
    auth="admin",
    query=LedgerQuery,
    response=LedgerPageOut,
    errors=["product_not_found"],
)
async def stock_ledger(request: Request, product_id: int, query: LedgerQuery) -> dict[str, Any]:
    on_hand, page = await run(stock.ledger_page, product_id, query.page, query.page_size)
    return {
        "product_id": product_id,
        "stock_quantity": on_hand,
        "items": [entry_json(e) for e in page.items],
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": page.pages,
    }
