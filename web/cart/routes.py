"""`/cart`: the session's cart in Redis, keyed by the X-Session-ID header, priced from the catalogue.

Served on the event loop: the cart is one async Redis call, and the catalogue rows that price it
come from the per-process cache (web/catalog/cache.py), so a cart read costs no threadpool hop."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from models.cart import store as cart
from models.infra.settings import get_settings
from models.orders import quote
from web.api import Registry, run
from web.cart.render import cart_json, quote_json
from web.cart.schemas import CartItemIn, CartOut, CartQuantityIn, QuoteIn, QuoteOut
from web.catalog import cache as catalog_cache

api = Registry()
TAGS = ["cart"]
SESSION = {"X-Session-ID": "Required: the cart's id, 8-128 characters of A-Z, a-z, 0-9, '_' or '-' "
                           "(400 invalid_session otherwise). An unknown session is an empty cart."}


def _session(request: Request) -> str:
    return cart.validate_session_id(request.headers.get("x-session-id"))


def _json(value: cart.Cart) -> dict[str, Any]:
    return cart_json(value, get_settings().currency)


@api.route("GET", "/cart", summary="The cart, priced at the catalogue's current prices", tags=TAGS,
           response=CartOut, headers=SESSION, errors=["invalid_session"])
async def get_cart(request: Request) -> dict[str, Any]:
    return _json(await cart.read(_session(request), catalog_cache.cart_rows))


@api.route("POST", "/cart/items", summary="Add units of a product (added to the line's quantity)", tags=TAGS,
           body=CartItemIn, response=CartOut, headers=SESSION,
           errors=["invalid_session", "product_not_found", "insufficient_stock"])
async def add_item(request: Request, body: CartItemIn) -> dict[str, Any]:
    return _json(await cart.add_item(_session(request), body.product_id, body.quantity, catalog_cache.cart_rows))


@api.route("PATCH", "/cart/items/{product_id:int}", summary="Set a line's quantity (0 removes it)", tags=TAGS,
           body=CartQuantityIn, response=CartOut, headers=SESSION,
           errors=["invalid_session", "cart_item_not_found", "product_not_found", "insufficient_stock"])
async def set_quantity(request: Request, product_id: int, body: CartQuantityIn) -> dict[str, Any]:
    return _json(await cart.set_quantity(_session(request), product_id, body.quantity, catalog_cache.cart_rows))


@api.route("DELETE", "/cart/items/{product_id:int}", summary="Remove a line (no error when absent)", tags=TAGS,
           response=CartOut, headers=SESSION, errors=["invalid_session"])
async def remove_item(request: Request, product_id: int) -> dict[str, Any]:
    return _json(await cart.remove_item(_session(request), product_id, catalog_cache.cart_rows))


@api.route("DELETE", "/cart", summary="Empty the cart", tags=TAGS, status=204, headers=SESSION,
           errors=["invalid_session"])
async def clear_cart(request: Request) -> Response:
    await run(cart.clear, _session(request))
    return Response(status_code=204)


@api.route("POST", "/cart/quote", summary="What POST /orders would charge for this cart now, with the same errors",
           tags=TAGS, body=QuoteIn, response=QuoteOut, headers=SESSION,
           errors=["invalid_session", "empty_cart", "product_unavailable", "insufficient_stock"])
async def quote_cart(request: Request, body: QuoteIn) -> dict[str, Any]:
    session_id = _session(request)
    priced = await run(quote.price_cart, session_id, body.shipping_method, body.discount_code)
    return quote_json(priced, body.shipping_method, get_settings().currency)
