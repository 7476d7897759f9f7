"""Baselines served with the same uvicorn settings as the shop: the framework's ceiling (/bare), the
naive stack's one SQL query (/sql) and one Redis command (/redis), each as the real app would do it
(blocking client calls through the threadpool)."""

from __future__ import annotations

import os

import orjson
import psycopg2.pool
import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.infra.db import connect_params

PRODUCTS = [
    {
        "id": i,
        "sku": f"SKU-{i}",
        "name": f"Product {i}",
        "slug": f"product-{i}",
        "price": 10000 + i,
        "currency": "KRW",
        "in_stock": True,
        "available_quantity": 10,
        "category": "tops",
        "tags": ["cotton"],
        "images": [f"/img/{i}.jpg"],
    }
    for i in range(20)
]
BARE = orjson.dumps({"items": PRODUCTS, "page": 1, "page_size": 20, "total": 20, "pages": 1})
QUERY = (
    "SELECT id, sku, name, slug, price, stock_quantity, category, tags, images FROM products "
    "WHERE is_published ORDER BY created_at DESC, id DESC LIMIT 20"
)

_name, _params = connect_params(os.environ["DATABASE_URL"])
# As many connections as the threadpool has threads (40), so no request waits on the pool, all
# kept open: psycopg2's pool closes a returned connection once it holds `minconn` idle ones.
POOL = psycopg2.pool.ThreadedConnectionPool(40, 40, dbname=_name, **_params)  # type: ignore[arg-type]
REDIS = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def bare(request: Request) -> Response:
    return json(BARE)


def _sql() -> bytes:
    conn = POOL.getconn()
    try:
        with conn.cursor() as cursor:
            cursor.execute(QUERY)
            rows = cursor.fetchall()
        conn.rollback()
    finally:
        POOL.putconn(conn)
    return orjson.dumps(
        {
            "items": [
                dict(
                    zip(("id", "sku", "name", "slug", "price", "stock", "category", "tags", "images"), row, strict=True)
                )
                for row in rows
            ]
        }
    )


async def sql(request: Request) -> Response:
    return json(await run_in_threadpool(_sql))


async def one_redis(request: Request) -> Response:
    return json(orjson.dumps(await run_in_threadpool(REDIS.hgetall, "bench:cart")))


app = Starlette(routes=[Route("/bare", bare), Route("/sql", sql), Route("/redis", one_redis)])
