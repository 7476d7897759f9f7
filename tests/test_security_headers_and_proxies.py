"""Every response carries the security headers (nosniff, no framing; HSTS in production), and the
client's address, which per-address rate limits count under, comes from X-Forwarded-For only when
the peer is a configured proxy (FORWARDED_ALLOW_IPS, none by default)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from models.infra.settings import get_settings
from web.app import middleware_for
from web.auth import client_address


def app_with(**overrides: Any) -> TestClient:
    """A route answering the client address the app reads, behind the app's middleware."""
    settings = replace(get_settings(), **overrides)
    routes = [Route("/whoami", lambda request: PlainTextResponse(client_address(request)))]
    return TestClient(Starlette(routes=routes, middleware=middleware_for(settings)))


def test_every_response_forbids_sniffing_and_framing(client: Any) -> None:
    for path in ("/api/v1/products", "/api/v1/no-such-route", "/api/docs", "/api/openapi.json", "/healthz"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["content-security-policy"] == "frame-ancestors 'none'", path
        assert "strict-transport-security" not in headers, path  # not production: HTTP on localhost


def test_production_adds_hsts() -> None:
    with app_with(env="production") as production:
        assert production.get("/whoami").headers["strict-transport-security"].startswith("max-age=")


def test_forwarded_for_is_ignored_unless_the_peer_is_a_configured_proxy() -> None:
    forged = {"X-Forwarded-For": "203.0.113.9"}
    with app_with(forwarded_allow_ips=[]) as direct:
        assert direct.get("/whoami", headers=forged).text == "testclient"  # TestClient's peer address
    with app_with(forwarded_allow_ips=["10.0.0.0/8"]) as other_proxy:
        assert other_proxy.get("/whoami", headers=forged).text == "testclient"
    with app_with(forwarded_allow_ips=["testclient"]) as behind_proxy:
        assert behind_proxy.get("/whoami", headers=forged).text == "203.0.113.9"
        # The nearest address the proxy did not vouch for: a client cannot prepend its own choice.
        chain = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
        assert behind_proxy.get("/whoami", headers=chain).text == "203.0.113.9"


def test_a_rotating_forwarded_for_does_not_escape_the_registration_limit(client: Any) -> None:
    limit = int(get_settings().register_rate_limit.split("/")[0])
    statuses = [
        client.post(
            "/api/v1/auth/register",
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            json={"email": f"rotating{n}@example.com", "password": "long-enough-1", "full_name": "R"},
        ).status_code
        for n in range(limit + 1)
    ]
    assert statuses[:limit] == [201] * limit and statuses[limit] == 429
