"""Operations endpoints and the error contract: /readyz goes 503 when Redis or the database is
down (real servers stopped, not mocks), every error has the contract's body, OpenAPI documents
every route."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import embedded
from models.infra import redis_client
from models.infra.db import db, init_db, make_database
from models.infra.settings import get_settings


@pytest.fixture
def own_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[embedded.EmbeddedRedis]:
    """Point the app (cart store and broker) at a redis-server of this test's own."""
    from tasks.app import app as celery_app

    server = embedded.EmbeddedRedis(tmp_path / "redis", persist=False)
    server.start()
    saved_broker = celery_app.conf.broker_url
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("CELERY_BROKER_URL", server.url)
    get_settings.cache_clear()
    redis_client._client.cache_clear()
    celery_app.conf.broker_url = server.url
    try:
        yield server
    finally:
        server.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
        redis_client._client.cache_clear()
        celery_app.conf.broker_url = saved_broker
        celery_app._after_fork()  # forget pooled connections to the stopped server


def test_a_hung_redis_is_503_after_the_deadline_not_a_hung_request(
    client: Any, own_redis: embedded.EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    headers = {"X-Session-ID": "session-one"}
    assert client.get("/api/v1/cart", headers=headers).status_code == 200
    monkeypatch.setattr(redis_client, "ASYNC_TIMEOUT", 0.5)
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)  # alive, connected, silent
    try:
        started = time.monotonic()
        hung = client.get("/api/v1/cart", headers=headers)
        waited = time.monotonic() - started
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    assert hung.status_code == 503 and hung.json()["error"]["code"] == "service_unavailable"
    assert 0.5 <= waited < 5
    assert client.get("/api/v1/cart", headers=headers).status_code == 200  # a fresh connection once it answers


def test_healthz_and_readyz(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "redis": True, "broker": True}


def test_readyz_is_503_when_redis_stops(client: Any, own_redis: embedded.EmbeddedRedis) -> None:
    assert client.get("/readyz").status_code == 200
    own_redis.stop()
    down = client.get("/readyz")
    assert down.status_code == 503 and down.headers["Retry-After"]
    error = down.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"]["checks"] == {"database": True, "redis": False, "broker": False}
    # An endpoint that needs Redis answers 503 with the contract's body, not a stack trace.
    cart = client.get("/api/v1/cart", headers={"X-Session-ID": "session-one"})
    assert cart.status_code == 503 and cart.json()["error"]["code"] == "service_unavailable"


def test_database_down_is_503(client: Any) -> None:
    original = db.obj
    init_db("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    try:
        response = client.get("/api/v1/products")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
        assert client.get("/readyz").json()["error"]["details"]["checks"]["database"] is False
    finally:
        db.obj.close_all()
        db.initialize(original)


def test_a_pool_with_no_connection_free_is_503_not_500(client: Any) -> None:
    """Every pooled connection busy past the pool's wait (a saturated database): 503 with
    Retry-After, as for a database that is down, not a 500 for peewee's MaxConnectionsExceeded."""
    original = db.obj
    pool = make_database(os.environ["DATABASE_URL"], max_connections=1, wait=0.3)  # 10 s in production
    db.initialize(pool)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pool.connection_context():  # the pool's only connection, busy until released
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        response = client.get("/api/v1/products?category=pool-test")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["retry-after"] == "5"
        release.set()
        holder.join(5)
        assert client.get("/api/v1/products?category=pool-test").status_code == 200  # free again: served
    finally:
        release.set()
        holder.join(5)
        pool.close_all()
        db.initialize(original)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/api/v1/products/999999", 404, "product_not_found"),
        ("PUT", "/api/v1/auth/me", 405, "method_not_allowed"),
        ("PUT", "/api/v1/products/1", 405, "method_not_allowed"),
        ("GET", "/api/v1/nope", 404, "not_found"),
        ("GET", "/api/v1/products/not-a-number", 404, "not_found"),
        ("GET", "/api/v1/auth/me", 401, "not_authenticated"),
        ("GET", "/api/v1/orders", 401, "not_authenticated"),
        ("GET", "/api/v1/cart", 400, "invalid_session"),
        ("GET", "/api/v1/products?page=0", 422, "validation_error"),
        ("GET", "/api/v1/products?page=0", 422, "validation_error"),
    ],
)
def test_errors_have_the_contract_body_and_never_html(
    client: Any, method: str, path: str, status: int, code: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


def test_admin_only_endpoints_are_403_for_customers(client: Any, user_headers: dict[str, str]) -> None:
    response = client.post("/api/v1/products", json={"sku": "X", "name": "X", "price": 1}, headers=user_headers)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_unexpected_errors_are_500_without_a_stack_trace(app: Any) -> None:
    from starlette.testclient import TestClient

    from web.health.routes import api

    @api.route("GET", "/boom-for-test", summary="test only", tags=["test"])
    async def boom(request: Any) -> None:
        raise RuntimeError("secret internals")

    from web.app import create_app

    try:
        with TestClient(create_app(), raise_server_exceptions=False) as local:
            response = local.get("/boom-for-test")
    finally:
        api.endpoints.pop()
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_request_id_is_echoed_or_made(client: Any) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32


def test_openapi_documents_every_route(client: Any) -> None:
    from web.app import REGISTRIES

    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for prefix, registry in REGISTRIES:
        for endpoint in registry.endpoints:
            operation = spec["paths"][prefix + endpoint.openapi_path][endpoint.method.lower()]
            if endpoint.body is not None:
                assert "requestBody" in operation, endpoint.path
            if endpoint.response is not None and endpoint.status != 204:
                assert "content" in operation["responses"][str(endpoint.status)], endpoint.path
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    for ref_holder in (spec["components"]["schemas"],):
        assert "Error" in ref_holder
    assert client.get("/api/docs").headers["content-type"].startswith("text/html")
    assert client.get("/api/redoc").status_code == 200
    # Every script, style and icon the two pages load is served by the app itself.
    for page in ("/api/docs", "/api/redoc"):
        assets = re.findall(r'(?:src|href)="([^"]+)"', client.get(page).text)
        assert assets and all(url.startswith("/api/docs/static/") for url in assets), assets
        for url in assets:
            assert client.get(url).status_code == 200, url


def test_metrics_count_requests_by_route(client: Any) -> None:
    client.get("/api/v1/products")
    client.get("/api/v1/products/999999")
    text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/api/v1/products",status="200"}' in text
    # The route template, not the path: one series per route however many ids are asked for.
    assert 'http_requests_total{method="GET",route="/api/v1/products/{product_id:int}",status="404"}' in text


def test_cors_layer_only_when_origins_are_configured() -> None:
    from dataclasses import replace

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from models.infra.settings import get_settings
    from web.app import middleware_for

    def app_with(**overrides: Any) -> TestClient:
        settings = replace(get_settings(), **overrides)
        routes = [Route("/x", lambda request: PlainTextResponse("ok"))]
        return TestClient(Starlette(routes=routes, middleware=middleware_for(settings)))

    origin = {"Origin": "https://shop.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Idempotency-Key"}
    with app_with(cors_origins=["https://shop.example"]) as configured:
        assert configured.get("/x", headers=origin).headers["access-control-allow-origin"] == "https://shop.example"
        answer = configured.options("/x", headers=preflight)
        assert answer.status_code == 200 and "Idempotency-Key" in answer.headers["access-control-allow-headers"]
        assert (
            "access-control-allow-origin"
            not in configured.get("/x", headers={"Origin": "https://evil.example"}).headers
        )
    with app_with(cors_origins=[]) as closed:
        assert "access-control-allow-origin" not in closed.get("/x", headers=origin).headers
    with app_with(allowed_hosts=["shop.example"]) as strict:
        assert strict.get("/x").status_code == 400  # TestClient's Host is testserver
        assert strict.get("/x", headers={"Host": "shop.example"}).status_code == 200
        assert strict.get("/x", headers={"Host": "shop.example:8443"}).status_code == 200


def test_refused_hosts_and_preflights_answer_with_the_error_body() -> None:
    """The contract: every error has the JSON error body, never plain text. Starlette's own Host
    and CORS layers answer a refusal with text; ours answer with the body (and keep CORS headers)."""
    from dataclasses import replace

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from models.infra.settings import get_settings
    from web.app import middleware_for

    settings = replace(
        get_settings(), allowed_hosts=["shop.example", "*.shop.example"], cors_origins=["https://shop.example"]
    )
    routes = [Route("/x", lambda request: PlainTextResponse("ok"))]
    with TestClient(Starlette(routes=routes, middleware=middleware_for(settings))) as client:
        for host in ("testserver", "evil.example", "shop.example.evil", "bad host header"):
            refused = client.get("/x", headers={"Host": host})
            assert refused.status_code == 400 and refused.headers["content-type"] == "application/json"
            assert refused.json()["error"]["code"] == "invalid_host", host
            assert "x-request-id" in refused.headers
        for host in ("shop.example", "api.shop.example", "SHOP.example:443"):
            assert client.get("/x", headers={"Host": host}).text == "ok", host
        preflight = {
            "Host": "shop.example",
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "PUT",
        }
        refused = client.options("/x", headers=preflight)
        assert refused.status_code == 400 and refused.headers["content-type"] == "application/json"
        assert refused.json()["error"] == {
            "code": "cors_refused",
            "message": "Disallowed CORS origin, method.",
            "details": {"refused": "origin, method"},
        }
        allowed = client.options(
            "/x", headers={**preflight, "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"


def test_every_error_code_the_code_raises_has_a_status() -> None:
    """A domain error whose code is missing from web/errors.py's table answers 500 (and logs): so
    every code spelled in models/ and web/ must be in the table."""
    import re

    from web.errors import STATUS_BY_CODE

    raised = re.compile(
        r"(?:NotFound|Conflict|InvalidInput|AuthError|DomainError|PaymentDeclined"
        r'|DiscountRefused)\(\s*"([a-z_]+)"'
        r'|^    code = "([a-z_]+)"',
        re.M,
    )  # raised with a code, or a class's own code
    root = Path(__file__).resolve().parent.parent
    codes = {
        a or b
        for package in ("models", "web", "tasks")
        for path in (root / package).rglob("*.py")
        for a, b in raised.findall(path.read_text())
    }
    assert len(codes) > 20, codes  # the pattern still finds them
    codes.discard("error")  # DomainError's placeholder: only its subclasses are raised
    assert sorted(codes - set(STATUS_BY_CODE)) == []
