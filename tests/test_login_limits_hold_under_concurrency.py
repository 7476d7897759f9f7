"""The login limit counts each attempt before the password is checked, so a burst of concurrent
guesses gets no more evaluations than the limit; and the per-account lock that guessing from many
addresses triggers keeps those addresses out without locking out the owner on a clean address."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bcrypt
import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from models.accounts import login_limits, service
from models.infra.settings import get_settings
from models.tables import User
from tests.support import LiveServer, assert_error, wait_for

API = "/api/v1/auth"
EMAIL, PASSWORD = "owner@example.com", "the-right-password"
LIMIT = 10  # LOGIN_RATE_LIMIT's default, 10/minute


def make_owner(rounds: int = 4) -> None:
    # A slower hash than the suite's (BCRYPT_ROUNDS=4) keeps every guess in flight long enough
    # for a burst to overlap, as in production (12 rounds).
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    User.create(email=EMAIL, hashed_password=hashed, full_name="Owner")


def test_the_limit_is_the_default_this_file_assumes() -> None:
    assert get_settings().login_rate_limit == f"{LIMIT}/minute"


@pytest.mark.parametrize("guesses", [40, 60])
def test_concurrent_guesses_are_evaluated_at_most_limit_times(
    live_server: LiveServer, guesses: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_owner(rounds=10)
    checked: list[str] = []  # every password bcrypt was asked to check (the server runs in this process)
    real_check = service._password_ok

    def counting_check(password: str, hashed: bytes) -> bool:
        checked.append(password)
        return real_check(password, hashed)

    monkeypatch.setattr(service, "_password_ok", counting_check)
    start = threading.Barrier(guesses - 1)

    def guess(i: int) -> int:
        start.wait()
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            return http.post(f"{API}/login", json={"email": EMAIL, "password": f"wrong-{i}"}).status_code

    with ThreadPoolExecutor(guesses) as pool:
        wrong = [pool.submit(guess, i) for i in range(guesses - 1)]
        # The right password goes last, while the burst is in flight: once LIMIT checks have begun.
        wait_for(
            lambda: len(checked) >= LIMIT or all(f.done() for f in wrong),
            timeout=60,
            what="the first guesses to reach the password check",
        )
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            last = http.post(f"{API}/login", json={"email": EMAIL, "password": PASSWORD})
        statuses = [f.result() for f in wrong]
    assert len(checked) <= LIMIT, f"{len(checked)} of {guesses} concurrent guesses reached the password check"
    assert PASSWORD not in checked
    assert sorted(set(statuses)) == [401, 429] and statuses.count(401) == len(checked)
    assert_error(last, 429, "rate_limited")


def from_address(app: Any, address: str) -> TestClient:
    return TestClient(app, client=(address, 5000))


def login(http: TestClient, password: str) -> Any:
    return http.post(f"{API}/login", json={"email": EMAIL, "password": password})


def test_guesses_from_many_addresses_lock_them_out_but_not_the_owner(app: Any) -> None:
    make_owner()
    for i in range(LIMIT):  # one wrong guess from each of ten addresses fills the account's window
        with from_address(app, f"10.0.0.{i}") as attacker:
            assert login(attacker, "wrong").status_code == 401
    assert login_limits.held("10.0.0.0", EMAIL) == (1, LIMIT)
    with from_address(app, "10.0.0.0") as attacker:
        # An address with a failure is locked out of the account, even with the right password.
        error = assert_error(login(attacker, PASSWORD), 429, "rate_limited")
        assert error["details"]["retry_after"] >= 1
    with from_address(app, "192.0.2.7") as owner:  # no failures from here: the owner gets in
        assert login(owner, PASSWORD).status_code == 200
        assert login(owner, PASSWORD).status_code == 200  # a success leaves no failure behind


def test_a_fresh_address_gets_one_guess_while_the_account_is_locked(app: Any) -> None:
    make_owner()
    for i in range(LIMIT):
        with from_address(app, f"10.0.1.{i}") as attacker:
            assert login(attacker, "wrong").status_code == 401
    with from_address(app, "10.0.2.1") as fresh:
        assert login(fresh, "wrong").status_code == 401  # checked: the address had no failures
        assert_error(login(fresh, PASSWORD), 429, "rate_limited")  # now it has one


def test_one_address_is_limited_across_accounts(app: Any) -> None:
    make_owner()
    with from_address(app, "10.9.9.9") as sprayer:
        for i in range(LIMIT):
            response = sprayer.post(f"{API}/login", json={"email": f"victim{i}@example.com", "password": "x"})
            assert response.status_code == 401
        assert_error(login(sprayer, PASSWORD), 429, "rate_limited")
