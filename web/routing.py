"""A route table that finds an API route by the path's first segment below the prefix.

Starlette's router tries every route in order, one regular expression each; with forty API routes a
request for the cart or an order paid for twenty-odd failed matches before its own. The table
buckets the routes by their first literal segment after the prefix ("products", "cart", ...) and
tries only that bucket, in declaration order, so matching, 405s, path parameters and the route
recorded in the scope (the access log's and metrics' route template) are Starlette's own.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send


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
        self.anywhere: list[Route] = []  # routes whose first segment is a parameter: tried for every path
        for route in routes:
            if not route.path.startswith(self.prefix):
                raise ValueError(f"{route.path} is not under {self.prefix}")
            head = route.path[len(self.prefix) :].split("/", 1)[0]
            if "{" in head:
                self.anywhere.append(route)
            else:
                self.buckets.setdefault(head, []).append(route)

    def _candidates(self, path: str) -> list[Route]:
        if not path.startswith(self.prefix):
            return []
        head = path[len(self.prefix) :].split("/", 1)[0]
        bucket = self.buckets.get(head, [])
        return bucket + self.anywhere if self.anywhere else bucket

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        partial: tuple[Match, Scope] | None = None
        for route in self._candidates(route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return match, {**child_scope, "route": route}
            if match is Match.PARTIAL and partial is None:
                partial = match, {**child_scope, "route": route}
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["route"].handle(scope, receive, send)  # the route matches() chose

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)
