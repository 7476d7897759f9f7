"""The one place where errors become HTTP responses with the contract's error body."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import peewee
import redis
from playhouse.pool import MaxConnectionsExceeded
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from models.errors import DomainError, RateLimited
from web.responses import JSONResponse

log = logging.getLogger("shop.web")
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]

STATUS_BY_CODE: dict[str, int] = {
    "validation_error": 422,
    "amount_mismatch": 422,
    "idempotency_key_reused": 422,
    "discount_invalid": 422,
    "discount_expired": 422,
    "discount_exhausted": 422,
    "discount_min_subtotal": 422,
    "invalid_session": 400,
    "invalid_host": 400,  # web/middleware.py: a Host not in ALLOWED_HOSTS
    "cors_refused": 400,  # web/middleware.py: a preflight CORS_ORIGINS does not allow
    "empty_cart": 400,
    "invalid_json": 400,
    "invalid_signature": 400,
    "bad_request": 400,
    "not_authenticated": 401,
    "token_expired": 401,
    "invalid_credentials": 401,
    "forbidden": 403,
    "review_not_allowed": 403,
    "not_found": 404,
    "product_not_found": 404,
    "order_not_found": 404,
    "address_not_found": 404,
    "cart_item_not_found": 404,
    "discount_not_found": 404,
    "review_not_found": 404,
    "method_not_allowed": 405,
    "email_taken": 409,
    "sku_taken": 409,
    "slug_taken": 409,
    "insufficient_stock": 409,
    "invalid_state": 409,
    "invalid_transition": 409,
    "payment_in_progress": 409,
    "conflict": 409,
    "payment_declined": 402,
    "product_unavailable": 409,
    "discount_code_taken": 409,
    "review_exists": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "service_unavailable": 503,
}

CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = STATUS_BY_CODE.get(exc.code)
    if status is None:  # a code missing from the table is a bug, not a client error
        log.error("domain error code %r has no status in STATUS_BY_CODE", exc.code)
        return await unexpected(request, exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(status, exc.code, exc.message, exc.details, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    if exc.status_code == 404:
        message = f"No route matches {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def dependency_down(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    return error_response(
        503,
        "service_unavailable",
        "A service the shop depends on is unavailable; try again shortly.",
        headers={"Retry-After": "5"},
    )


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    HTTPException: http_error,
    peewee.OperationalError: dependency_down,
    peewee.InterfaceError: dependency_down,
    # Every pooled connection stayed busy for the pool's whole wait: a saturated database is, to the
    # caller, one that is down for a moment (a ValueError subclass: it would otherwise be a 500).
    MaxConnectionsExceeded: dependency_down,
    redis.ConnectionError: dependency_down,
    redis.TimeoutError: dependency_down,
    Exception: unexpected,
}
