"""A refresh token is single use, and that is remembered in PostgreSQL: after Redis loses
everything (a restart without persistence, a flush), a token already traded is still refused and
its reuse still revokes every session of the user (the whole family of pairs)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx2 as httpx

from models.accounts import service as accounts
from models.infra.redis_client import get_redis
from models.tables import UsedRefreshToken, User, utcnow
from tests.support import LiveServer, assert_error

API = "/api/v1/auth"


def tokens_for(client: Any) -> dict[str, str]:
    assert (
        client.post(
            f"{API}/register", json={"email": "ana@example.com", "password": "s3cret-pass", "full_name": "Ana"}
        ).status_code
        == 201
    )
    response = client.post(f"{API}/login", json={"email": "ana@example.com", "password": "s3cret-pass"})
    assert response.status_code == 200
    return dict(response.json())


def me(client: Any, pair: dict[str, str]) -> Any:
    return client.get(f"{API}/me", headers={"Authorization": f"Bearer {pair['access_token']}"})


def refresh(client: Any, pair: dict[str, str]) -> Any:
    return client.post(f"{API}/refresh", json={"refresh_token": pair["refresh_token"]})


def test_a_used_refresh_token_is_refused_after_redis_forgets_everything(client: Any) -> None:
    first = tokens_for(client)
    second = refresh(client, first).json()
    assert me(client, second).status_code == 200
    get_redis().flushdb()  # what a Redis restart without persistence leaves

    assert_error(refresh(client, first), 401, "not_authenticated")
    # The reuse revoked the family: the pair the first refresh gave is dead too.
    assert_error(me(client, second), 401, "not_authenticated")
    assert_error(refresh(client, second), 401, "not_authenticated")
    assert_error(me(client, first), 401, "not_authenticated")
    again = client.post(f"{API}/login", json={"email": "ana@example.com", "password": "s3cret-pass"}).json()
    assert me(client, again).status_code == 200  # logging in again starts a new family


def test_concurrent_uses_of_one_refresh_token_leave_no_working_pair(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        pair = tokens_for(http)
    start = threading.Barrier(4)
    answers: list[Any] = []

    def use() -> None:
        with httpx.Client(base_url=live_server.url) as http:
            start.wait()
            answers.append(refresh(http, pair))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    granted = [a.json() for a in answers if a.status_code == 200]
    assert len(granted) <= 1 and len(answers) == 4
    with httpx.Client(base_url=live_server.url) as http:
        for issued in granted:  # a pair handed out in the race is revoked by the reuse beside it
            assert_error(me(http, issued), 401, "not_authenticated")


def test_used_tokens_are_kept_until_they_expire_then_pruned(client: Any) -> None:
    first = tokens_for(client)
    refresh(client, first)
    (row,) = UsedRefreshToken.select()
    assert row.user_id == User.get(User.email == "ana@example.com").id
    assert row.expires_at > utcnow() + timedelta(days=13)  # REFRESH_TOKEN_TTL, 14 days
    assert accounts.prune_used_refresh_tokens() == 0
    UsedRefreshToken.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    assert accounts.prune_used_refresh_tokens() == 1
