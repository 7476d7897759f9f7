"""Accounts end to end over HTTP: register, login, me, refresh (single use), logout, bad input."""

from __future__ import annotations

import time
from typing import Any

import pytest

from models.infra import ratelimit
from tests.support import assert_error

API = "/api/v1/auth"


def register(client: Any, **overrides: Any) -> Any:
    body = {"email": "ana@example.com", "password": "s3cret-pass", "full_name": "Ana Kim", **overrides}
    return client.post(f"{API}/register", json=body)


def login(client: Any, email: str = "ana@example.com", password: str = "s3cret-pass") -> Any:
    return client.post(f"{API}/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_returns_user_without_password_hash(client: Any) -> None:
    response = register(client, phone="010-1234-5678", email="Ana@Example.com")
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {
        "id",
        "email",
        "phone",
        "full_name",
        "is_active",
        "is_verified",
        "is_admin",
        "locale",
        "created_at",
        "updated_at",
    }
    assert user["email"] == "ana@example.com"
    assert user["is_admin"] is False and user["is_active"] is True
    assert "+00:00" in user["created_at"]


def test_register_duplicate_email_is_409_case_insensitively(client: Any) -> None:
    assert register(client).status_code == 201
    assert_error(register(client, email="ANA@example.com"), 409, "email_taken")


@pytest.mark.parametrize(
    ("body", "bad_fields"),
    [
        ({"email": "not-an-email", "password": "long-enough", "full_name": "A"}, {"email"}),
        ({"email": "a@example.com", "password": "short", "full_name": "A"}, {"password"}),
        ({"email": "a@example.com", "password": "long-enough"}, {"full_name"}),
        ({"email": 12, "password": ["x"], "full_name": None}, {"email", "password", "full_name"}),
        ({"email": "a@example.com", "password": "long-enough", "full_name": "A", "is_admin": True}, {"is_admin"}),
    ],
)
def test_register_validation_lists_each_bad_field(client: Any, body: dict[str, Any], bad_fields: set[str]) -> None:
    error = assert_error(client.post(f"{API}/register", json=body), 422, "validation_error")
    assert set(error["details"]["fields"]) == bad_fields


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_or_non_object_json_is_422(client: Any, raw: bytes) -> None:
    response = client.post(f"{API}/register", content=raw, headers={"Content-Type": "application/json"})
    error = assert_error(response, 422, "validation_error")
    assert "body" in error["details"]["fields"]


def test_oversized_body_is_413_with_error_body(client: Any) -> None:
    response = client.post(
        f"{API}/login", content=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_oversized_chunked_body_is_413_with_error_body(client: Any) -> None:
    # No Content-Length: the limit is enforced while the body streams in.
    def chunks() -> Any:
        for _ in range(65):
            yield b"x" * 16384

    response = client.post(f"{API}/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")


def test_login_me_refresh_logout_flow(client: Any) -> None:
    register(client)
    tokens = login(client).json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    me = client.get(f"{API}/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "ana@example.com"

    fresh = client.post(f"{API}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    new = fresh.json()
    assert client.get(f"{API}/me", headers=bearer(new["access_token"])).status_code == 200

    assert client.post(f"{API}/logout", headers=bearer(new["access_token"])).status_code == 204
    assert_error(client.get(f"{API}/me", headers=bearer(new["access_token"])), 401, "not_authenticated")
    assert_error(client.get(f"{API}/me", headers=bearer(tokens["access_token"])), 401, "not_authenticated")
    assert_error(client.post(f"{API}/refresh", json={"refresh_token": new["refresh_token"]}), 401, "not_authenticated")


def test_refresh_token_is_single_use_and_reuse_revokes_the_session(client: Any) -> None:
    register(client)
    tokens = login(client).json()
    first = client.post(f"{API}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    reused = client.post(f"{API}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_error(reused, 401, "not_authenticated")
    # Reuse of a stolen refresh token logs every session of the user out.
    assert_error(client.get(f"{API}/me", headers=bearer(first.json()["access_token"])), 401, "not_authenticated")


def test_wrong_password_and_unknown_email_answer_the_same(client: Any) -> None:
    register(client)
    wrong = assert_error(login(client, password="wrong-password"), 401, "invalid_credentials")
    unknown = assert_error(login(client, email="nobody@example.com"), 401, "invalid_credentials")
    assert wrong == unknown


def test_inactive_user_cannot_log_in(client: Any) -> None:
    from models.tables import User

    register(client)
    User.update(is_active=False).where(User.email == "ana@example.com").execute()
    assert_error(login(client), 401, "invalid_credentials")


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic abc", "Bearer not-a-token", "Bearer eyJ1aWQiOjF9.tampered.sig"],
)
def test_missing_or_garbage_tokens_are_401(client: Any, header: str) -> None:
    headers = {"Authorization": header} if header else {}
    assert_error(client.get(f"{API}/me", headers=headers), 401, "not_authenticated")


def test_tampered_token_is_rejected(client: Any) -> None:
    register(client)
    access = login(client).json()["access_token"]
    payload, rest = access.split(".", 1)
    tampered = ("A" if payload[0] != "A" else "B") + payload[1:] + "." + rest
    assert_error(client.get(f"{API}/me", headers=bearer(tampered)), 401, "not_authenticated")


def test_refresh_token_is_not_an_access_token_and_vice_versa(client: Any) -> None:
    register(client)
    tokens = login(client).json()
    assert_error(client.get(f"{API}/me", headers=bearer(tokens["refresh_token"])), 401, "not_authenticated")
    wrong_purpose = client.post(f"{API}/refresh", json={"refresh_token": tokens["access_token"]})
    assert_error(wrong_purpose, 401, "not_authenticated")


def test_expired_access_token_says_token_expired(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    register(client)
    access = login(client).json()["access_token"]
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 16 * 60)  # itsdangerous reads time.time()
    assert_error(client.get(f"{API}/me", headers=bearer(access)), 401, "token_expired")


def test_repeated_login_failures_are_rate_limited_with_retry_after(client: Any) -> None:
    register(client)
    statuses = [login(client, password=f"wrong-{i}").status_code for i in range(10)]
    assert statuses == [401] * 10
    limited = login(client)  # even the right password waits until the window passes
    error = assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert error["details"]["retry_after"] >= 1
    ratelimit.reset()
    assert login(client).status_code == 200


def test_register_is_rate_limited_per_address(client: Any) -> None:
    codes = [register(client, email=f"u{i}@example.com").status_code for i in range(21)]
    assert codes[:20] == [201] * 20
    assert codes[20] == 429


def test_resetting_an_admins_password_ends_the_old_sessions(client: Any) -> None:
    """`manage.py create-admin` on an existing account is how an operator rotates a leaked password:
    the tokens issued before it stop working, access and refresh alike, as after a logout."""
    from models.accounts import service as accounts

    accounts.create_admin("ops@example.com", "first-password")
    old = login(client, "ops@example.com", "first-password").json()
    assert client.get(f"{API}/me", headers=bearer(old["access_token"])).status_code == 200

    accounts.create_admin("ops@example.com", "second-password")
    assert_error(client.get(f"{API}/me", headers=bearer(old["access_token"])), 401, "not_authenticated")
    assert_error(client.post(f"{API}/refresh", json={"refresh_token": old["refresh_token"]}), 401, "not_authenticated")
    assert_error(login(client, "ops@example.com", "first-password"), 401, "invalid_credentials")
    new = login(client, "ops@example.com", "second-password").json()
    assert client.get(f"{API}/me", headers=bearer(new["access_token"])).json()["is_admin"] is True

    # The same password again (a deploy script that runs create-admin each time) is no rotation.
    accounts.create_admin("ops@example.com", "second-password")
    assert client.get(f"{API}/me", headers=bearer(new["access_token"])).status_code == 200


def test_an_unknown_email_costs_the_same_bcrypt_work_as_a_wrong_password() -> None:
    """The stand-in hash checked for an unknown email has the configured cost (BCRYPT_ROUNDS), not a
    fixed 12: otherwise the time of a login tells which emails have accounts."""
    from models.accounts import service as accounts
    from models.infra.settings import get_settings

    rounds = get_settings().bcrypt_rounds
    assert accounts._dummy_hash().startswith(f"$2b${rounds:02d}$".encode())
    assert accounts.hash_password("x").startswith(f"$2b${rounds:02d}$")
