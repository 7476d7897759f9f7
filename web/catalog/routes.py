"""`/products`: the storefront's catalogue (published products) and the administrators' CRUD."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import orjson
from starlette.requests import Request
from starlette.responses import Response

from models.catalog import queries as catalog
from models.errors import AuthError, validation_error
from models.infra.settings import get_settings
from models.tables import User
from tasks.dispatch import perform
from web.api import Registry, raw_header, run
from web.catalog.render import product_json, product_page_json
from web.catalog.schemas import ProductIn, ProductOut, ProductPageOut, ProductPatch, ProductQuery
from web.responses import RawJSON

api = Registry()
TAGS = ["products"]
# Optional auth: a valid token of an administrator shows unpublished products, cost_price and low_stock.
TOKEN_ERRORS = ["not_authenticated", "token_expired"]


def _json(body: bytes) -> Response:
    return RawJSON(body)


def _is_admin(user: User | None) -> bool:
    return bool(user and user.is_admin)


def _anonymous_key(request: Request) -> str | None:
    """The catalogue cache's key for an anonymous read of this URL; None for a caller with a token,
    whose answer may depend on who they are."""
    if raw_header(request, b"authorization"):
        return None
    path_params = request.path_params
    if "product_id" in path_params:
        return f"id:{path_params['product_id']}"
    if "slug" in path_params:
        return f"slug:{path_params['slug']}"
    return "list:" + known_query(request.scope["query_string"].decode("latin-1"))


KNOWN_PARAMETERS = frozenset(ProductQuery.model_fields)


def known_query(raw: str) -> str:
    """The query string without the parameters a listing ignores (`_=1712`, `utm_*`), so cache
    busters neither miss the cache nor fill it. A parameter is kept, as sent, when its decoded name
    is a listing parameter: two spellings of one query may be cached twice, never answered wrong."""
    if not raw:
        return raw
    pieces = raw.split("&")
    kept = [piece for piece in pieces if _name(piece) in KNOWN_PARAMETERS]
    return raw if len(kept) == len(pieces) else "&".join(kept)


def _name(piece: str) -> str:
    name = piece.partition("=")[0]
    return unquote_plus(name) if "%" in name or "+" in name else name


def _from_cache(request: Request) -> Response | None:
    """An anonymous read answered from the catalogue cache before any parsing: a key is only ever
    stored after its request was validated and rendered, so the same URL gets the same answer."""
    key = _anonymous_key(request)
    body = request.app.state.catalog.get(key) if key is not None else None
    return None if body is None else _json(body)


@api.route(
    "GET",
    "/products",
    summary="List the catalogue: filter, search, sort, paginate",
    tags=TAGS,
    query=ProductQuery,
    response=ProductPageOut,
    auth="optional",
    errors=["forbidden", *TOKEN_ERRORS],
    cached=_from_cache,
)
async def list_products(request: Request, query: ProductQuery, user: User | None) -> Any:
    is_admin = _is_admin(user)
    if not is_admin and (query.low_stock is not None or query.published is not None):
        raise AuthError("forbidden", "The low_stock and published filters are for administrators.")
    if query.min_price is not None and query.max_price is not None and query.min_price > query.max_price:
        raise validation_error({"max_price": "Must not be below min_price."})

    async def render() -> bytes:
        filters = catalog.ProductFilters(
            category=query.category,
            tag=query.tag,
            q=query.q or None,
            min_price=query.min_price,
            max_price=query.max_price,
            in_stock=query.in_stock,
            featured=query.featured,
            low_stock=query.low_stock,
            published=query.published,
        )
        page = await run(catalog.list_products, filters, query.sort, query.page, query.page_size, is_admin)
        return orjson.dumps(product_page_json(page, is_admin, get_settings().currency))

    # Anonymous reads go through the app's cache (web/catalog/cache.py).
    return _json(await request.app.state.catalog.through(None if user else _anonymous_key(request), render))


@api.route(
    "GET",
    "/products/{product_id:int}",
    summary="A product by id",
    tags=TAGS,
    response=ProductOut,
    auth="optional",
    errors=["product_not_found", *TOKEN_ERRORS],
    cached=_from_cache,
)
async def get_product(request: Request, product_id: int, user: User | None) -> Any:
    return await _one_product(request, user, catalog.get_product, product_id)


@api.route(
    "GET",
    "/products/slug/{slug}",
    summary="A product by slug",
    tags=TAGS,
    response=ProductOut,
    auth="optional",
    errors=["product_not_found", *TOKEN_ERRORS],
    cached=_from_cache,
)
async def get_product_by_slug(request: Request, slug: str, user: User | None) -> Any:
    return await _one_product(request, user, catalog.get_product_by_slug, slug)


async def _one_product(request: Request, user: User | None, lookup: Callable[[Any, bool], Any], ident: Any) -> Response:
    """One product by lookup(ident, is_admin); anonymous reads through the app's cache."""
    is_admin = _is_admin(user)

    async def render() -> tuple[bytes, int]:
        row = await run(lookup, ident, is_admin)
        return orjson.dumps(product_json(row, is_admin, get_settings().currency)), row["id"]

    cache = request.app.state.catalog
    return _json(await cache.through_product(None if user else _anonymous_key(request), render))


@api.route(
    "POST",
    "/products",
    summary="Create a product (admin)",
    tags=TAGS,
    body=ProductIn,
    response=ProductOut,
    status=201,
    auth="admin",
    errors=["sku_taken", "slug_taken"],
)
async def create_product(request: Request, user: User, body: ProductIn) -> dict[str, Any]:
    row = await run(catalog.create_product, body.model_dump(), f"user:{user.id}")
    request.app.state.catalog.clear()  # here at once; PostgreSQL tells the other processes
    return product_json(row, True, get_settings().currency)


@api.route(
    "PATCH",
    "/products/{product_id:int}",
    summary="Change a product (admin)",
    tags=TAGS,
    body=ProductPatch,
    response=ProductOut,
    auth="admin",
    errors=["product_not_found", "sku_taken", "slug_taken"],
)
async def update_product(request: Request, user: User, product_id: int, body: ProductPatch) -> dict[str, Any]:
    # perform: a new stock_quantity that crosses the low-stock threshold asks for the alert.
    row = await run(perform, catalog.update_product, product_id, body.model_dump(exclude_unset=True), f"user:{user.id}")
    request.app.state.catalog.clear()  # here at once; PostgreSQL tells the other processes
    return product_json(row, True, get_settings().currency)


@api.route(
    "DELETE",
    "/products/{product_id:int}",
    summary="Delete a product (admin); order history keeps its snapshot",
    tags=TAGS,
    status=204,
    auth="admin",
    errors=["product_not_found"],
)
async def delete_product(request: Request, product_id: int) -> Response:
    await run(catalog.delete_product, product_id)
    request.app.state.catalog.clear()  # here at once; PostgreSQL tells the other processes
    return Response(status_code=204)
