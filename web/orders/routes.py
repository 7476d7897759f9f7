"""`/orders`: checkout, the caller's orders, status polling, pay, cancel, admin transitions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from models.cart import store as cart
from models.errors import AuthError, validation_error
from models.infra import failpoints
from models.orders import checkout, payment_steps, pipeline
from models.orders import queries as order_queries
from models.tables import Order, User
from tasks.dispatch import perform
from web.api import Registry, run
from web.auth import bearer_token
from web.orders import status_waiter
from web.orders.render import order_json, order_page, status_json
from web.orders.schemas import (
    AdminUpdateIn,
    CheckoutIn,
    OrderListQuery,
    OrderOut,
    OrderPage,
    OrderStatusOut,
    PayIn,
    StatusQuery,
)
from web.responses import JSONResponse

api = Registry()
TAGS = ["orders"]
SESSION_HEADER = {"X-Session-ID": "The cart to check out (8-128 chars of [A-Za-z0-9_-])",
                  "Idempotency-Key": "Retries with the same key and body return the same order"}


def _rendered(order: Order) -> dict[str, Any]:
    failpoints.hit("orders.before_render")
    return order_json(order_queries.get(order.id, None))


def _perform(step: Callable[..., Order], *args: Any) -> dict[str, Any]:
    """Run an order step, render the committed order, then publish what the step emitted: all in
    one threadpool trip (each costs a thread hop and a pooled connection, and these endpoints are
    on every checkout's path)."""
    return cast(dict[str, Any], perform(step, *args, render=_rendered))


def _session(request: Request) -> str:
    return cart.validate_session_id(request.headers.get("x-session-id"))


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255:
        raise validation_error({"Idempotency-Key": "Must be 1-255 characters."})
    return key


@api.route("POST", "/orders", summary="Check out the cart: 202 with the pending order", tags=TAGS, auth="user",
           body=CheckoutIn, response=OrderOut, status=202, headers=SESSION_HEADER,
           errors=["empty_cart", "invalid_session", "idempotency_key_reused", "address_not_found",
                   "product_unavailable"])
async def create_order(request: Request, user: User, body: CheckoutIn) -> dict[str, Any]:
    session_id, key, checkout_body = _session(request), _idempotency_key(request), body.model_dump(mode="json")

    def place() -> Order:
        return checkout.place_order(user, session_id, checkout_body, key).order

    return await run(_perform, place)


@api.route("GET", "/orders", summary="The caller's orders, newest first", tags=TAGS, auth="user",
           query=OrderListQuery, response=OrderPage)
async def list_orders(request: Request, user: User, query: OrderListQuery) -> dict[str, Any]:
    page = await run(order_queries.list_for_user, user.id, query.page, query.page_size, query.status)
    return order_page(page)


@api.route("GET", "/orders/{order_id:int}", summary="One order with items, totals, timeline and payment",
           tags=TAGS, auth="user", response=OrderOut, errors=["order_not_found"])
async def get_order(request: Request, user: User, order_id: int) -> dict[str, Any]:
    view = await run(order_queries.get, order_id, None if user.is_admin else user.id)
    return order_json(view, admin=user.is_admin)


@api.route("GET", "/orders/{order_id:int}/status", summary="Cheap status for polling (ETag, 304 on If-None-Match)",
           tags=TAGS, auth="token", query=StatusQuery, response=OrderStatusOut, errors=["order_not_found"],
           headers={"If-None-Match": "The ETag of the last answer: 304 while nothing changed"})
async def order_status(request: Request, order_id: int, query: StatusQuery) -> Response:
    token = bearer_token(request)
    if token is None:
        raise AuthError("not_authenticated", "Send an access token as 'Authorization: Bearer <token>'.")
    known = [tag.strip() for tag in request.headers.get("if-none-match", "").split(",") if tag.strip()]
    deadline = time.monotonic() + query.wait
    while True:
        # Register before reading, so a change committed in between still wakes us.
        change = status_waiter.register(order_id) if query.wait and known else None
        try:
            # One threadpool hop and one query (auth + row) for the endpoint storefronts poll.
            row = await run(order_queries.status_for_token, token, order_id)
            etag = f'"o{row["id"]}v{row["version"]}"'
            remaining = deadline - time.monotonic()
            if etag not in known or change is None or remaining <= 0:
                break
            # Re-read at least every second even if an announcement was lost.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(change, timeout=min(remaining, 1.0))
        finally:
            if change is not None:
                status_waiter.forget(order_id, change)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in known:
        return Response(status_code=304, headers=headers)
    return JSONResponse(status_json(row), headers=headers)


@api.route("POST", "/orders/{order_id:int}/pay", summary="Hand the payment proof to the pipeline", tags=TAGS,
           auth="user", body=PayIn, response=OrderOut, status=202,
           errors=["order_not_found", "invalid_state", "payment_in_progress", "amount_mismatch"])
async def pay(request: Request, user: User, order_id: int, body: PayIn) -> dict[str, Any]:
    proof = body.model_dump(exclude_none=True)
    return await run(_perform, payment_steps.submit, order_id, user, proof)


@api.route("DELETE", "/orders/{order_id:int}", summary="Cancel before shipping (stock released, refund if paid)",
           tags=TAGS, auth="user", response=OrderOut, errors=["order_not_found", "invalid_state"])
async def cancel(request: Request, user: User, order_id: int) -> dict[str, Any]:
    return await run(_perform, pipeline.cancel, order_id, user, "customer")


@api.route("PATCH", "/orders/{order_id:int}", summary="Admin: ship, deliver or cancel", tags=TAGS, auth="admin",
           body=AdminUpdateIn, response=OrderOut, errors=["order_not_found", "invalid_transition", "invalid_state"])
async def admin_update(request: Request, order_id: int, body: AdminUpdateIn) -> dict[str, Any]:
    return await run(_perform, pipeline.admin_update, order_id, body.status, body.tracking_number, body.carrier)
