"""Wiring only: routes, middleware, exception handlers, lifespan.

Importing this module builds `app` (for `uvicorn web.app:app`) and touches nothing outside it: the
database, Redis, logging and the subscriptions are set up by the lifespan, in the process that
serves. What an app keeps in memory lives on its own app.state (web/state.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from models.infra.db import init_db
from models.infra.logs import setup_logging
from models.infra.redis_client import close_async_redis
from models.infra.settings import Settings, get_settings
from web import demo_images, docs, openapi
from web.accounts import routes as auth
from web.addresses import routes as addresses
from web.admin import routes as admin
from web.cart import routes as cart
from web.catalog import routes as products
from web.categories import routes as categories
from web.dashboard import routes as dashboard
from web.discounts import routes as discounts
from web.errors import EXCEPTION_HANDLERS, ErrorHandler, unexpected
from web.health import routes as health
from web.inventory import routes as inventory
from web.middleware import (
    BodyLimitMiddleware,
    CorsMiddleware,
    HostCheckMiddleware,
    RequestContextMiddleware,
    RequestIds,
    security_headers,
)
from web.orders import routes as orders
from web.payments import routes as payments
from web.responses import JSONResponse
from web.reviews import routes as reviews
from web.routing import App, RouteTable
from web.shipping import routes as shipping
from web.shipping_methods import routes as shipping_methods
from web.state import AppState
from web.webhooks import routes as webhooks

API_PREFIX = "/api/v1"
# (prefix, registry) in the order their routes are matched.
REGISTRIES = [
    ("", health.api),
    (API_PREFIX, auth.api),
    (API_PREFIX, products.api),
    (API_PREFIX, addresses.api),
    (API_PREFIX, cart.api),
    (API_PREFIX, orders.api),
    (API_PREFIX, payments.api),
    (API_PREFIX, webhooks.api),
    (API_PREFIX, shipping.api),
    (API_PREFIX, shipping_methods.api),
    (API_PREFIX, categories.api),
    (API_PREFIX, admin.api),
    (API_PREFIX, discounts.api),
    (API_PREFIX, inventory.api),
    (API_PREFIX, reviews.api),
    (API_PREFIX, dashboard.api),
]
TITLE, VERSION = "Shop checkout API", "1.0.0"


def _openapi_doc() -> dict[str, object]:
    endpoints = [(prefix, ep) for prefix, registry in REGISTRIES for ep in registry.endpoints]
    return openapi.build(endpoints, TITLE, VERSION)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings = get_settings()
    setup_logging(settings.log_level)
    init_db()
    state = cast(AppState, app.state)
    state.request_ids.reseed()  # this process's own prefix, even if the app was built before a fork
    for subscription in state.subscriptions:
        subscription.start()
    try:
        yield
    finally:
        for subscription in state.subscriptions:
            await subscription.stop()
        await close_async_redis()


def middleware_for(settings: Settings, request_ids: RequestIds | None = None) -> list[Middleware]:
    """The app's middleware for any Starlette app, outermost first, down to the body limit."""
    return [
        *outer_middleware(settings, request_ids),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]


def outer_middleware(
    settings: Settings, request_ids: RequestIds | None = None, on_error: ErrorHandler | None = None
) -> list[Middleware]:
    """Outermost first; create_app's App adds the body limit itself (web/routing.py's ApiDoor).
    Host and CORS checks are left out when they would allow everything and deny nothing
    (ALLOWED_HOSTS=*, CORS_ORIGINS empty): each layer costs every request."""
    stack = []
    if settings.forwarded_allow_ips:
        # The client's address (rate limits, logs) from X-Forwarded-For, only when the peer is a
        # configured proxy. The servers' command lines pass the same FORWARDED_ALLOW_IPS (their
        # own default would trust 127.0.0.1); doing it here too holds however the app is served.
        stack.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips))
    stack.append(
        Middleware(RequestContextMiddleware, ids=request_ids, headers=security_headers(settings), on_error=on_error)
    )
    if "*" not in settings.allowed_hosts:
        stack.append(Middleware(HostCheckMiddleware, allowed_hosts=settings.allowed_hosts))
    if settings.cors_origins:
        stack.append(
            Middleware(
                CorsMiddleware,
                allow_origins=settings.cors_origins,
                allow_credentials=True,
                allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "X-Session-ID",
                    "Idempotency-Key",
                    "If-None-Match",
                    "X-Request-ID",
                ],
                expose_headers=["ETag", "Retry-After", "X-Request-ID"],
            )
        )
    return stack


def create_app() -> Starlette:
    """A new app with its own state (cache, waiters, request ids); connects to nothing."""
    settings = get_settings()
    state = AppState()
    # The registries' routes in two tables (web/routing.py), tried first: they are nearly all the
    # traffic. The API's under /api/v1, the operations' (/healthz, /metrics) at the root.
    tables = [
        RouteTable(prefix or "/", [route for p, registry in REGISTRIES if p == prefix for route in registry.routes(p)])
        for prefix in (API_PREFIX, "")
    ]
    routes: list[BaseRoute] = [
        tables[0],
        Route("/api/openapi.json", openapi_json, include_in_schema=False),
        *docs.routes(TITLE),
        *demo_images.routes,
        tables[1],
    ]
    app = App(
        tables=tables,
        max_bytes=settings.max_body_bytes,
        routes=routes,
        middleware=outer_middleware(settings, state.request_ids, on_error=unexpected),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state = state
    app.state.openapi = _openapi_doc()
    return app


app = create_app()
