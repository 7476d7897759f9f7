"""`/categories`: the storefront's navigation, with product counts. Served from the app's catalogue
cache (web/catalog/cache.py) like a listing: kept CATALOG_CACHE_TTL seconds, dropped when a product is
added, deleted or edited (stock changes do not move counts)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from models.catalog.categories import list_categories
from web.api import Registry, run
from web.categories.render import categories_json
from web.categories.schemas import CategoriesOut

api = Registry()
TAGS = ["products"]
KEY = "categories"


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _from_cache(request: Request) -> Response | None:
    body = request.app.state.catalog.get(KEY)
    return None if body is None else _json(body)


@api.route(
    "GET",
    "/categories",
    summary="Categories with their number of published products",
    tags=TAGS,
    response=CategoriesOut,
    cached=_from_cache,
)
async def categories(request: Request) -> Response:
    async def render() -> bytes:
        return orjson.dumps(categories_json(await run(list_categories)))

    return _json(await request.app.state.catalog.through(KEY, render))
