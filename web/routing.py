"""A route table that finds an API route by the path's first segment below the prefix.

Starlette's router tries every route in order, one regular expression each; with forty API routes a
request for the cart or an order paid for twenty-odd failed matches before its own. The table
buckets the routes by their first literal segment after the prefix ("products", "cart", ...) and
tries only that bucket, in declaration order, so matching, 405s, path parameters and the route
recorded in the scope (the access log's and metrics' route template) are Starlette's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, Router
from starlette.types import ASGIApp, ExceptionHandler, Receive, Scope, Send

from web.middleware import BodyLimitMiddleware

MAX_RESOLVED = 10_000  # memoised matches of paths with parameters (RouteTable.resolved)
MAX_RESOLVED_PATH = 256  # longer paths (a slug of junk) are matched each time, never kept


def route_path(scope: Scope) -> str:
    """The path below root_path, as Starlette's Route.matches reads it (its own helper is private)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


class RouteTable(BaseRoute):
    def __init__(self, prefix: str, routes: list[Route]) -> None:
        self.prefix = prefix.rstrip("/") + "/"
        self.routes = routes
        self.buckets: dict[str, list[Route]] = {}
        # The same bucket narrowed to the routes that can match a path of n segments (a route's
        # count is fixed unless a parameter takes slashes, ":path"): a poll of /orders/1/status
        # tries two patterns, not every /orders route.
        self.by_length: dict[tuple[str, int], list[Route]] = {}
        self.anywhere: list[Route] = []  # routes whose first segment is a parameter: tried for every path
        # Paths without parameters, matched by one dict lookup (as Route.matches would match them).
        self.static: dict[str, Route] = {}
        # Paths with parameters already matched in full, by (method, path): the route and its
        # converted parameters, so a product page read again costs one lookup, not a segment walk.
        # Bounded: a crawler's endless ids empty it, they do not grow it, and a long path is not kept
        # (10,000 slugs of 8 kB junk would otherwise hold 160 MB).
        self.resolved: dict[tuple[str, str], tuple[Route, dict[str, Any]]] = {}
        for route in routes:
            if not route.path.startswith(self.prefix):
                raise ValueError(f"{route.path} is not under {self.prefix}")
            shadowed = any(earlier.path_regex.match(route.path) for earlier in self.routes[: routes.index(route)])
            if "{" not in route.path and not shadowed:  # Starlette would find this route for this path
                self.static[route.path] = route
            head = route.path[len(self.prefix) :].split("/", 1)[0]
            if "{" in head:
                self.anywhere.append(route)
            else:
                self.buckets.setdefault(head, []).append(route)
        for head, bucket in self.buckets.items():
            for length in {self._length(route) for route in bucket} - {None}:
                self.by_length[head, length] = [r for r in bucket if self._length(r) in {length, None}]
        # Each route's path as segments: a literal, or a parameter (name, convertor, its pattern).
        # A path is matched segment by segment, as Route.matches' regular expression would match it
        # (each parameter's convertor pattern over one whole segment), without building that scope.
        self.segments: dict[int, list[Any] | None] = {id(route): self._segments(route) for route in routes}

    def _segments(self, route: Route) -> list[Any] | None:
        """The route's segments below the prefix; None when a parameter is not a whole segment
        (":path", or text beside a parameter): such a route is left to Route.matches."""
        out: list[Any] = []
        for part in route.path[len(self.prefix) :].split("/"):
            if "{" not in part:
                out.append(part)
                continue
            name, _, kind = part[1:-1].partition(":")
            convertor = route.param_convertors.get(name)
            if not (part.startswith("{") and part.endswith("}")) or convertor is None or kind == "path":
                return None
            out.append((name, convertor, re.compile(convertor.regex + r"\Z")))
        return out

    def _length(self, route: Route) -> int | None:
        """How many segments below the prefix a route's paths have; None when a parameter takes slashes."""
        if ":path}" in route.path:
            return None
        return route.path[len(self.prefix) :].count("/") + 1

    def _candidates(self, path: str) -> list[Route]:
        if not path.startswith(self.prefix):
            return []
        rest = path[len(self.prefix) :]
        head = rest.split("/", 1)[0]
        bucket = self.by_length.get((head, rest.count("/") + 1))
        if bucket is None:
            bucket = [r for r in self.buckets.get(head, []) if self._length(r) is None]
        return bucket + self.anywhere if self.anywhere else bucket

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = route_path(scope)
        route = self.static.get(path)
        if route is not None and route.methods is not None and scope["method"] in route.methods:
            params = dict(scope.get("path_params", ()))
            return Match.FULL, {"endpoint": route.endpoint, "path_params": params, "route": route}
        # A mounted table's parameters join its own: not memoised, nor is a long path.
        memo = not scope.get("path_params") and len(path) <= MAX_RESOLVED_PATH
        key = (scope["method"], path)
        known = self.resolved.get(key) if memo else None
        if known is not None:
            route, params = known
            return Match.FULL, {"endpoint": route.endpoint, "path_params": dict(params), "route": route}
        partial: tuple[Match, Scope] | None = None
        parts = path[len(self.prefix) :].split("/") if path.startswith(self.prefix) else []
        for route in self._candidates(path):
            segments = self.segments[id(route)]
            if segments is None:
                match, child_scope = route.matches(scope)
            else:
                match, child_scope = self._match_segments(route, segments, parts, scope)
            if match is Match.FULL:
                if memo:
                    if len(self.resolved) >= MAX_RESOLVED:
                        self.resolved.clear()
                    self.resolved[key] = route, dict(child_scope["path_params"])
                return match, {**child_scope, "route": route}
            if match is Match.PARTIAL and partial is None:
                partial = match, {**child_scope, "route": route}
        return partial or (Match.NONE, {})

    @staticmethod
    def _match_segments(route: Route, segments: list[Any], parts: list[str], scope: Scope) -> tuple[Match, Scope]:
        """Route.matches for a route of whole-segment parameters: the same answer, child scope and
        converted parameters, by comparing segments instead of running its regular expression."""
        if len(parts) != len(segments):
            return Match.NONE, {}
        params = dict(scope.get("path_params", ()))
        for part, segment in zip(parts, segments, strict=True):
            if segment.__class__ is str:
                if part != segment:
                    return Match.NONE, {}
            else:
                name, convertor, pattern = segment
                if pattern.match(part) is None:
                    return Match.NONE, {}
                params[name] = convertor.convert(part)
        child_scope = {"endpoint": route.endpoint, "path_params": params}
        if route.methods and scope["method"] not in route.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["route"].handle(scope, receive, send)  # the route matches() chose

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


class ApiDoor(BodyLimitMiddleware):
    """The innermost layer of the app (in place of Starlette's ExceptionMiddleware): the body limit,
    the exception handlers, and a short way in for the API's routes.

    A request the table matches in full (path and method) goes straight to its route's endpoint, and
    its response straight to `send`: no Router walk, no second Request, no wrapper per response. Any
    other request (the docs, a 404, a 405, the lifespan) goes to Starlette's router, whose routes
    find the same handlers in the scope. Either way a handled exception (a domain error, a 404) is
    answered here, inside CORS, as Starlette answers it."""

    def __init__(
        self, router: Router, tables: list[RouteTable], handlers: Mapping[Any, ExceptionHandler], max_bytes: int
    ) -> None:
        super().__init__(self._dispatch, max_bytes)
        self.router = router
        self.tables = tables
        # Exception itself is the last resort's (RequestContextMiddleware's on_error), as in Starlette.
        self.handlers = {key: value for key, value in handlers.items() if key is not Exception}
        self.scope_handlers: tuple[dict[Any, ExceptionHandler], dict[int, ExceptionHandler]] = (self.handlers, {})

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = self.scope_handlers
        scope["router"] = self.router
        for table in self.tables:
            match, child_scope = table.matches(scope)
            if match is Match.FULL:
                break
        try:
            if match is not Match.FULL:
                await self.router(scope, receive, send)
                return
            scope.update(child_scope)
            response = await child_scope["route"].endpoint(Request(scope, receive, send))
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive, send), exc)
            exc.__traceback__ = None  # a reused exception instance would pile up tracebacks
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> ExceptionHandler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None


class App(Starlette):
    """Starlette with a shorter stack: `middleware` (outermost first), then ApiDoor around the router.
    Starlette's own ServerErrorMiddleware and ExceptionMiddleware are left out: the app's
    RequestContextMiddleware (given on_error) and ApiDoor do their work, one call each per request."""

    def __init__(self, *, tables: list[RouteTable], max_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tables = tables
        self.max_bytes = max_bytes

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = ApiDoor(self.router, self.tables, self.exception_handlers, self.max_bytes)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app
