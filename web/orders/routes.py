"""`/orders`: checkout (customers and guests), the caller's orders, status polling, pay, cancel, a
guest's lookup, admin transitions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from models.accounts import tokens
from models.discounts.rules import CODES as DISCOUNT_REFUSALS
from models.errors import AuthError, validation_error
from models.infra import failpoints, ratelimit
from models.infra.settings import get_settings
from models.orders import checkout, guests, payment_steps, pipeline
from models.orders import queries as order_queries
from models.tables import Order, User
from tasks.dispatch import perform
from web.api import Header, Registry, raw_header, run
from web.auth import client_address
from web.cart.session import cart_for
from web.etags import if_none_match
from web.orders.access import customer_for, guest_order, token_of
from web.orders.render import order_etag, order_json, order_page, status_json
from web.orders.schemas import (
    AdminUpdateIn,
    CheckoutIn,
    CheckoutOut,
    LookupIn,
    LookupOut,
    OrderListQuery,
    OrderOut,
    OrderPage,
    OrderStatusOut,
    PayIn,
    StatusQuery,
)
from web.responses import JSONResponse, json_response

api = Registry()
TAGS = ["orders"]
SESSION_HEADER = {
    "X-Session-ID": Header(
        "The cart to check out (8-128 characters of [A-Za-z0-9_-]); required without an access "
        "token; with one, the customer's cart, with this session's lines merged in",
        schema={"type": "string", "pattern": "^[A-Za-z0-9_-]{8,128}$"},
    ),
    "Idempotency-Key": Header(
        "Send one per checkout and reuse it on retries: the same key and body return the "
        "same order (never a second one); the same key with another body is 422 "
        "idempotency_key_reused",
        schema={"type": "string", "minLength": 1, "maxLength": 255, "examples": ["3f2b8c1e-checkout-1"]},
    ),
}


def _rendered(order: Order) -> dict[str, Any]:
    failpoints.hit("orders.before_render")
    return order_json(order_queries.get(order.id, None))


def _perform(step: Callable[..., Order], *args: Any) -> dict[str, Any]:
    """Run an order step, render the committed order, then publish what the step emitted: all in
    one threadpool trip (each costs a thread hop and a pooled connection, and these endpoints are
    on every checkout's path)."""
    return cast(dict[str, Any], perform(step, *args, render=_rendered))


def _accepted(order: dict[str, Any]) -> Response:
    """The 202 with the order and its ETag: GET /orders/{id}/status answers 304 to it, and holds a
    long poll with it, until the order moves on."""
    response = json_response(order, 202)
    response.raw_headers.append((b"etag", order_etag(order["id"], order["version"]).encode()))
    return response


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255:
        raise validation_error({"Idempotency-Key": "Must be 1-255 characters."})
    return key


@api.route(
    "POST",
    "/orders",
    summary="Check out the cart, as a customer or a guest: 202 with the pending order",
    tags=TAGS,
    auth="optional",
    body=CheckoutIn,
    response=CheckoutOut,
    status=202,
    etag=True,
    headers=SESSION_HEADER,
    errors=[
        "empty_cart",
        "invalid_session",
        "idempotency_key_reused",
        "address_not_found",
        "product_unavailable",
        "insufficient_stock",
        "not_authenticated",
        "rate_limited",
        *DISCOUNT_REFUSALS,
    ],
)
async def create_order(request: Request, user: User | None, body: CheckoutIn) -> Response:
    key = _idempotency_key(request)
    checkout_body = body.model_dump(mode="json", exclude={"guest"})
    customer: User | guests.Guest
    if user is not None:
        if body.guest is not None:
            raise validation_error({"guest": "Signed-in customers check out as themselves; leave guest out."})
        customer = user
    elif body.guest is None:
        raise AuthError("not_authenticated", "Log in, or check out as a guest: send guest {email, phone, full_name}.")
    elif body.address_id is not None:
        raise validation_error({"address_id": "Guests have no address book: send shipping_address."})
    else:
        customer = guests.Guest(body.guest.email, body.guest.phone, body.guest.full_name)
        checkout_body["guest"] = body.guest.model_dump(mode="json")  # part of what an Idempotency-Key repeats
    client = client_address(request)
    cart_id = (await cart_for(request, user, session_required=True)).cart_id  # a customer's: their own cart

    def place() -> Order:
        if isinstance(customer, guests.Guest):
            ratelimit.hit(get_settings().guest_checkout_rate_limit, "guest-checkout", client)
        return checkout.place_order(customer, cart_id, checkout_body, key).order

    answer = await run(_perform, place)
    if user is None:
        answer["order_token"] = guests.sign_order_token(answer["id"])
    return _accepted(answer)


@api.route(
    "POST",
    "/orders/lookup",
    summary="A guest finds their order again: a fresh order token",
    tags=TAGS,
    body=LookupIn,
    response=LookupOut,
    errors=["order_not_found", "rate_limited"],
)
async def lookup(request: Request, body: LookupIn) -> dict[str, Any]:
    order_id, token = await run(guests.lookup, body.order_number, body.email, client_address(request))
    return {"order_id": order_id, "order_token": token}


@api.route(
    "GET",
    "/orders",
    summary="The caller's orders, newest first",
    tags=TAGS,
    auth="user",
    query=OrderListQuery,
    response=OrderPage,
)
async def list_orders(request: Request, user: User, query: OrderListQuery) -> dict[str, Any]:
    page = await run(order_queries.list_for_user, user.id, query.page, query.page_size, query.status)
    return order_page(page)


@api.route(
    "GET",
    "/orders/{order_id:int}",
    summary="One order with items, totals, timeline and payment",
    tags=TAGS,
    auth="token",
    response=OrderOut,
    errors=["order_not_found"],
)
async def get_order(request: Request, order_id: int) -> dict[str, Any]:
    customer = await customer_for(request, order_id)
    if isinstance(customer, guests.GuestAccess):
        return order_json(await run(order_queries.get, order_id, None, guest=True))
    view = await run(order_queries.get, order_id, None if customer.is_admin else customer.id)
    return order_json(view, admin=customer.is_admin)


@api.route(
    "GET",
    "/orders/{order_id:int}/status",
    summary="Cheap status for polling (ETag, 304 on If-None-Match)",
    tags=TAGS,
    auth="token",
    query=StatusQuery,
    response=OrderStatusOut,
    errors=["order_not_found"],
    headers={
        "If-None-Match": 'The ETag of the last answer (compared weakly: W/"x" matches "x"): 304 while nothing changed'
    },
)
async def order_status(request: Request, order_id: int, query: StatusQuery) -> Response:
    token = token_of(request)
    guest = guest_order(token, order_id) is not None  # another order's token: 404 before any read
    known = if_none_match(raw_header(request, b"if-none-match"))
    reader = request.app.state.status
    if not (query.wait and known):  # a plain poll: one read (one Redis round trip while nothing changed)
        row = await reader.read(token, order_id, guest)
        etag = order_etag(row["id"], row["version"])
    else:
        deadline = time.monotonic() + query.wait
        waiters = request.app.state.waiters
        while True:
            # Register before reading, so a change committed in between still wakes us.
            change = waiters.register(order_id)
            try:
                row = await reader.read(token, order_id, guest)
                etag = order_etag(row["id"], row["version"])
                remaining = deadline - time.monotonic()
                if not known.matches(etag) or remaining <= 0:
                    break
                # Re-read at least every second even if an announcement was lost.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(change, timeout=min(remaining, 1.0))
            finally:
                waiters.forget(order_id, change)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if known.matches(etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(status_json(row), headers=headers)


@api.route(
    "POST",
    "/orders/{order_id:int}/pay",
    summary="Hand the payment proof to the pipeline",
    tags=TAGS,
    auth="token",
    body=PayIn,
    response=OrderOut,
    status=202,
    etag=True,
    errors=["order_not_found", "invalid_state", "payment_in_progress", "amount_mismatch"],
)
async def pay(request: Request, order_id: int, body: PayIn) -> Response:
    token = token_of(request)
    guest = guest_order(token, order_id)  # an order token: no read needed to know who asks
    proof = body.model_dump(exclude_none=True)

    # A member's token: its signature here, its user's row with the order's lock (one statement
    # fewer on the way from pay to confirmed).
    claims = None if guest is not None else tokens.verify(token, tokens.ACCESS)
    answer = await run(_perform, payment_steps.submit, order_id, guest or claims, proof)
    if claims is not None:
        request.state.user_id = claims.user_id
    return _accepted(answer)


@api.route(
    "DELETE",
    "/orders/{order_id:int}",
    summary="Cancel before shipping (stock released, refund if paid)",
    tags=TAGS,
    auth="token",
    response=OrderOut,
    errors=["order_not_found", "invalid_state"],
)
async def cancel(request: Request, order_id: int) -> dict[str, Any]:
    customer = await customer_for(request, order_id)
    return await run(_perform, pipeline.cancel, order_id, customer, "customer")


@api.route(
    "PATCH",
    "/orders/{order_id:int}",
    summary="Admin: ship, deliver or cancel",
    tags=TAGS,
    auth="admin",
    body=AdminUpdateIn,
    response=OrderOut,
    errors=["order_not_found", "invalid_transition"],
)
async def admin_update(request: Request, user: User, order_id: int, body: AdminUpdateIn) -> dict[str, Any]:
    return await run(
        _perform, pipeline.admin_update, order_id, body.status, body.tracking_number, body.carrier, f"user:{user.id}"
    )
