"""`/cart`: the session's cart in Redis, keyed by the X-Session-ID header (or the customer's, with an
access token: web/cart/session.py), priced from the catalogue.

Served on the event loop: the cart is one async Redis call, and the catalogue rows that price it
come from the app's catalogue cache (web/catalog/cache.py), so a cart read costs no threadpool hop."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from models.cart import store as cart
from models.discounts.rules import CODES as DISCOUNT_REFUSALS
from models.infra.settings import get_settings
from models.orders import quote
from models.tables import User
from web.api import Header, Registry, run
from web.cart.render import cart_json, quote_json
from web.cart.schemas import CartItemIn, CartOut, CartQuantityIn, QuoteIn, QuoteOut
from web.cart.session import CartRef, cart_for

api = Registry()
TAGS = ["cart"]
SESSION = {
    "X-Session-ID": Header(
        "The cart's id, 8-128 characters of A-Z, a-z, 0-9, '_' or '-' (400 invalid_session otherwise); required "
        "without an access token. An unknown session is an empty cart. With an access token too, the session is "
        "attached to the customer: its lines are merged into the customer's cart, which every request with either "
        "the token or that session id then reads and writes. With a token alone: the customer's cart.",
        schema={"type": "string", "pattern": "^[A-Za-z0-9_-]{8,128}$"},
    )
}


def _json(value: cart.Cart, ref: CartRef) -> dict[str, Any]:
    return cart_json(value, ref.session_id, get_settings().currency)


@api.route(
    "GET",
    "/cart",
    summary="The cart, priced at the catalogue's current prices",
    tags=TAGS,
    response=CartOut,
    headers=SESSION,
    auth="optional",
    errors=["invalid_session"],
)
async def get_cart(request: Request, user: User | None) -> dict[str, Any]:
    ref = await cart_for(request, user)
    return _json(await cart.read(ref.cart_id, request.app.state.catalog.cart_rows), ref)


@api.route(
    "POST",
    "/cart/items",
    summary="Add units of a product (added to the line's quantity)",
    tags=TAGS,
    body=CartItemIn,
    response=CartOut,
    headers=SESSION,
    auth="optional",
    errors=["invalid_session", "product_not_found", "insufficient_stock"],
)
async def add_item(request: Request, user: User | None, body: CartItemIn) -> dict[str, Any]:
    ref = await cart_for(request, user)
    rows = request.app.state.catalog.cart_rows
    return _json(await cart.add_item(ref.cart_id, body.product_id, body.quantity, rows), ref)


@api.route(
    "PATCH",
    "/cart/items/{product_id:int}",
    summary="Set a line's quantity (0 removes it)",
    tags=TAGS,
    body=CartQuantityIn,
    response=CartOut,
    headers=SESSION,
    auth="optional",
    errors=["invalid_session", "cart_item_not_found", "product_not_found", "insufficient_stock"],
)
async def set_quantity(request: Request, user: User | None, product_id: int, body: CartQuantityIn) -> dict[str, Any]:
    ref = await cart_for(request, user)
    rows = request.app.state.catalog.cart_rows
    return _json(await cart.set_quantity(ref.cart_id, product_id, body.quantity, rows), ref)


@api.route(
    "DELETE",
    "/cart/items/{product_id:int}",
    summary="Remove a line (no error when absent)",
    tags=TAGS,
    response=CartOut,
    headers=SESSION,
    auth="optional",
    errors=["invalid_session"],
)
async def remove_item(request: Request, user: User | None, product_id: int) -> dict[str, Any]:
    ref = await cart_for(request, user)
    return _json(await cart.remove_item(ref.cart_id, product_id, request.app.state.catalog.cart_rows), ref)


@api.route(
    "DELETE",
    "/cart",
    summary="Empty the cart",
    tags=TAGS,
    status=204,
    headers=SESSION,
    auth="optional",
    errors=["invalid_session"],
)
async def clear_cart(request: Request, user: User | None) -> Response:
    ref = await cart_for(request, user)
    await run(cart.clear, ref.cart_id)
    return Response(status_code=204)


@api.route(
    "POST",
    "/cart/quote",
    summary="What POST /orders would charge for this cart now, with the same errors",
    tags=TAGS,
    body=QuoteIn,
    response=QuoteOut,
    auth="optional",
    headers={"X-Session-ID": "Required, as for POST /orders (the same cart: with an access token, the customer's)."},
    errors=["invalid_session", "empty_cart", "product_unavailable", "insufficient_stock", *DISCOUNT_REFUSALS],
)
async def quote_cart(request: Request, user: User | None, body: QuoteIn) -> dict[str, Any]:
    ref = await cart_for(request, user, session_required=True)
    # The signed-in customer's per-customer discount limits apply, as they will to their order.
    priced = await run(
        quote.price_cart, ref.cart_id, body.shipping_method, body.discount_code, user.id if user is not None else None
    )
    return quote_json(priced, body.shipping_method, get_settings().currency)
