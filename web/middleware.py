"""ASGI middleware: request id, security headers, access log and metrics; the body size limit."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware, parse_host_header
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.infra.settings import Settings
from web import metrics
from web.errors import ErrorHandler, error_response

log = logging.getLogger("shop.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds:
    """The request ids one app makes: 16 random hex digits, then a counter (32 hex digits in all).
    Unique across processes and restarts without a random read per request; they identify requests
    in logs, they are not secrets. The app's lifespan calls reseed() in the process that serves, so
    workers forked from one parent (gunicorn --preload) get prefixes of their own."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """Headers on every response: no MIME sniffing, never inside a frame (both the old header and
    CSP's), and in production HSTS: browsers use only HTTPS for two years once they have seen it."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"frame-ancestors 'none'"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if settings.is_production:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


class RequestContextMiddleware:
    """Give every request an id (X-Request-ID in and out) and the security headers, log one line,
    and count it. With `on_error` it is also the app's last resort (Starlette's ServerErrorMiddleware,
    which create_app leaves out): an exception nothing inside handled is answered with on_error's
    response, with the request id and the security headers, and raised again for the server to log."""

    def __init__(
        self,
        app: ASGIApp,
        ids: RequestIds | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        on_error: ErrorHandler | None = None,
    ) -> None:
        self.app = app
        self.ids = ids or RequestIds()  # the app's own (app.state.request_ids), from create_app
        self.headers = headers or []
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                if REQUEST_ID.match(incoming):
                    request_id = incoming
                break
        if not request_id:
            request_id = self.ids.new()
        if "state" in scope:
            scope["state"]["request_id"] = request_id
        else:
            scope["state"] = {"request_id": request_id}
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 0  # until the answer starts

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header, *self.headers]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if self.on_error is None or status:  # not ours to answer, or already answering
                raise
            response = await self.on_error(Request(scope), exc)
            await response(scope, receive, send_wrapper)
            raise  # as Starlette's ServerErrorMiddleware does: the server logs it
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            status = status or 500  # no answer at all: the server answers 500
            metrics.observe_request(scope["method"], template, status, duration)
            if log.isEnabledFor(logging.INFO):  # the extra dict is not built for nothing
                log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                        "user_id": scope["state"].get("user_id"),
                    },
                )


class TooLarge(Exception):
    """A streamed body passed the limit (raised from receive, caught by BodyLimitMiddleware)."""


class BodyLimitMiddleware:
    """Refuse bodies over max_bytes with 413 and the contract's error body.

    A declared Content-Length is checked up front (the server holds the body to it); only a chunked
    body, whose size is unknown until it has arrived, is counted as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if name == b"transfer-encoding":
                chunked = True
        if not chunked:
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge:
            if not started:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"The request body exceeds {self.max_bytes} bytes.", {"max_bytes": self.max_bytes}
        )
        await response(scope, receive, send)


class HostCheckMiddleware(TrustedHostMiddleware):
    """Starlette's Host check (ALLOWED_HOSTS), answering a refused Host with the contract's error
    body instead of Starlette's plain-text one. Hosts it would let through, or redirect to their
    www. name, are left to it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allow_any and not self._known(Headers(scope=scope).get("host")):
            response = error_response(400, "invalid_host", "The Host header names no host this shop serves.")
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _known(self, header: str | None) -> bool:
        parsed = parse_host_header(header)  # Starlette's own parsing, so both agree on every header
        if parsed is None:
            return False
        host = parsed.host.lower()
        return any(
            host == pattern or (pattern.startswith("*") and host.endswith(pattern[1:])) or pattern == "www." + host
            for pattern in self.allowed_hosts
        )


class CorsMiddleware(CORSMiddleware):
    """Starlette's CORS, answering a refused preflight with the contract's error body (with the
    same CORS headers) instead of Starlette's plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        kept = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-") or k == "vary"}
        reason = bytes(response.body).decode()  # "Disallowed CORS origin, method"
        return error_response(400, "cors_refused", f"{reason}.", {"refused": reason.split(" ", 2)[2]}, kept)
