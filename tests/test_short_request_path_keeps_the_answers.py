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
