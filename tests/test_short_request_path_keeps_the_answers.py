"""The app's short request path (web/routing.py's App and ApiDoor, RequestContextMiddleware as the
last resort) answers as Starlette's full stack did: the same route for a path, 405 and HEAD, and
an unexpected error's 500 carries the request id and the security headers like any answer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.testclient import TestClient

from web.routing import RouteTable


async def _first(request: Request) -> Response:
    return PlainTextResponse("first")


async def _second(request: Request) -> Response:
    return PlainTextResponse("second")


def _scope(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}


def test_a_path_without_parameters_goes_where_starlette_would_send_it() -> None:
    table = RouteTable(
        "/api/v1",
        [
            Route("/api/v1/things/{name}", _first, methods=["GET"]),
            Route("/api/v1/things/new", _second, methods=["GET"]),  # shadowed by the route above
            Route("/api/v1/other", _second, methods=["POST"]),
        ],
    )
    match, child = table.matches(_scope("/api/v1/things/new"))
    assert match is Match.FULL and child["route"].path == "/api/v1/things/{name}"
    assert child["path_params"] == {"name": "new"}
    match, child = table.matches(_scope("/api/v1/other", "POST"))
    assert match is Match.FULL and child["route"].path == "/api/v1/other" and child["path_params"] == {}
    match, _ = table.matches(_scope("/api/v1/other"))
    assert match is Match.PARTIAL  # the router answers 405


def test_head_and_405_on_the_api(app: Any) -> None:
    client = TestClient(app)  # not the checking client: HEAD has no documented body
    head = client.head("/api/v1/products")
    assert head.status_code == 200 and head.content == b"" and head.headers["x-content-type-options"] == "nosniff"
    wrong = client.put("/api/v1/products")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"] and wrong.headers["x-request-id"]


def test_an_unexpected_error_is_answered_with_the_request_id_and_security_headers(app: Any) -> None:
    from web.app import create_app
    from web.health.routes import api

    @api.route("GET", "/boom-for-headers", summary="test only", tags=["test"])
    async def boom(request: Any) -> None:
        raise RuntimeError("secret internals")

    try:
        with TestClient(create_app(), raise_server_exceptions=False) as local:
            response = local.get("/boom-for-headers", headers={"X-Request-ID": "boom-1"})
    finally:
        api.endpoints.pop()
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-frame-options"] == "DENY"


def test_every_api_route_matches_as_starlettes_own_matching_would() -> None:
    """The table matches parameter routes segment by segment instead of by Route.matches' regular
    expression: for every API route, on its own paths, neighbours and malformed variants, and
    every method, it must find the same route, kind of match and converted parameters as trying
    the routes in order with Route.matches."""
    from web.app import API_PREFIX, REGISTRIES

    routes = [route for p, registry in REGISTRIES if p == API_PREFIX for route in registry.routes(p)]
    table = RouteTable(API_PREFIX, routes)
    paths = set()
    for route in routes:
        for value in ("7", "0", "123456789012", "x", "-1", "7x", "", "%20", "한글"):
            path = route.path
            for convertor in ("{order_id:int}", "{product_id:int}", "{id:int}"):
                path = path.replace(convertor, value)
            while "{" in path:
                start = path.index("{")
                path = path[:start] + value + path[path.index("}") + 1 :]
            paths |= {path, path + "/", path + "/extra", path.rsplit("/", 1)[0]}
    assert len(paths) > 200
    # Twice over: the second pass answers the paths matched in full from the table's memo.
    for path in sorted(paths) * 2:
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            scope = _scope(path, method)
            expected: tuple[Any, ...] = (Match.NONE, None, None)
            for route in routes:  # Starlette's router: the first full match, else the first partial
                match, child = route.matches(scope)
                if match is Match.FULL:
                    expected = (match, route, child["path_params"])
                    break
                if match is Match.PARTIAL and expected[0] is Match.NONE:
                    expected = (match, route, child["path_params"])
            match, child = table.matches(scope)
            found = (
                (match, child.get("route"), child.get("path_params"))
                if match is not Match.NONE
                else (match, None, None)
            )
            assert found == expected, (method, path)
    assert table.resolved  # the second pass did read the memo


def test_the_memo_of_matched_paths_is_bounded_and_hands_out_fresh_parameters(monkeypatch: Any) -> None:
    """A crawler walking endless ids must not grow the memo without end, and a handler that changes
    its path_params must not change what the next request for that path is given."""
    from web import routing

    monkeypatch.setattr(routing, "MAX_RESOLVED", 50)
    table = RouteTable("/api/v1", [Route("/api/v1/things/{id:int}", _first, methods=["GET"])])
    for number in range(1, 500):
        match, child = table.matches(_scope(f"/api/v1/things/{number}"))
        assert match is Match.FULL and child["path_params"] == {"id": number}
        assert len(table.resolved) <= 50
    match, child = table.matches(_scope("/api/v1/things/499"))  # from the memo
    child["path_params"]["id"] = "changed"
    match, child = table.matches(_scope("/api/v1/things/499"))
    assert match is Match.FULL and child["path_params"] == {"id": 499}
    # A mounted table's outer parameters join its own, and such a match is not kept.
    match, child = table.matches({**_scope("/api/v1/things/7"), "path_params": {"shop": "kr"}})
    assert child["path_params"] == {"shop": "kr", "id": 7}
    assert table.matches(_scope("/api/v1/things/7"))[1]["path_params"] == {"id": 7}
    # A long path is matched, but not kept.
    table.resolved.clear()
    long_id = "9" * 300
    match, child = table.matches(_scope(f"/api/v1/things/{long_id}"))
    assert match is Match.FULL and child["path_params"] == {"id": int(long_id)}
    assert not table.resolved
