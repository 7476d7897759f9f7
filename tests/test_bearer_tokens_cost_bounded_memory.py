"""What an anonymous client can make a web process do with junk bearer tokens is bounded: a token
longer than any this API signs is refused before it is decoded, junk is never remembered, and the
per-process memory of verified tokens survives the event loop and threadpool threads evicting at
once."""

from __future__ import annotations

import base64
import sys
import threading
from typing import Any

import pytest

from models.infra import signed
from tests.support import assert_error
from web.auth import MAX_TOKEN_LENGTH

API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_longer_than_any_this_api_signs_is_refused(client: Any) -> None:
    before = len(signed._peeked)
    # Shaped like an order token (its payload decodes), with a signature no token of ours has.
    head = base64.urlsafe_b64encode(b'{"oid": 1}').decode().rstrip("=")
    huge = f"{head}.aw8Kqw." + "s" * MAX_TOKEN_LENGTH
    assert_error(client.get(f"{API}/auth/me", headers=bearer(huge)), 401, "not_authenticated")
    assert_error(client.get(f"{API}/orders/1/status", headers=bearer(huge)), 401, "not_authenticated")
    # An endpoint where the token is optional still refuses a bad one, as it does any invalid token.
    session = {"X-Session-ID": "session-long-token"}
    assert_error(client.get(f"{API}/cart", headers={**session, **bearer(huge)}), 401, "not_authenticated")
    assert len(signed._peeked) == before


def test_junk_tokens_are_not_remembered(client: Any) -> None:
    before = len(signed._peeked)
    for n in range(200):
        junk = f"{n:04d}" + "x" * 900  # not base64 JSON: no payload at all
        assert_error(client.get(f"{API}/orders/1/status", headers=bearer(junk)), 401, "not_authenticated")
        head = base64.urlsafe_b64encode(b'["not", "an", "object", %d]' % n).decode().rstrip("=")
        assert_error(client.get(f"{API}/auth/me", headers=bearer(f"{head}.sig.sig")), 401, "not_authenticated")
    assert len(signed._peeked) == before


def test_evicting_from_many_threads_at_once_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens are verified on the event loop and in threadpool threads. Once the memory is full,
    each new token evicts the oldest; two threads could pick the same one, and the second's `del`
    raised KeyError into its request (a 500 for a valid token)."""
    monkeypatch.setattr(signed, "REMEMBERED", 20)
    kind = signed.SignedTokens("test-eviction")
    tokens = [kind.dumps({"n": n}) for n in range(16_000)]
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def verify(share: list[str]) -> None:
        start.wait()
        for token in share:
            try:
                kind.loads(token, max_age=60)
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible: the race needs a switch
    try:
        threads = [threading.Thread(target=verify, args=(tokens[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []
    assert len(kind._verified) <= 20
