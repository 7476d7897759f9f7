"""Timed signed tokens (itsdangerous's URLSafeTimedSerializer, one salt per kind of token), each
distinct token string verified once per process.

A storefront polling an order's status sends the same token many times a second; its signature
cannot change, so a token that verified once is remembered with the time it was signed, and only
its age is checked again (SignatureExpired, exactly as itsdangerous would raise it). Bad tokens are
not remembered. The serializer is built once per secret key, not once per call.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from itsdangerous import BadPayload, SignatureExpired, URLSafeTimedSerializer

from models.infra.settings import get_settings

REMEMBERED = 20_000  # verified tokens kept per kind; the oldest go first


class SignedTokens:
    """One kind of token: `dumps` signs, `loads` verifies (and remembers what verified)."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self._key: str | None = None
        self._serializer: URLSafeTimedSerializer | None = None
        self._verified: dict[str, tuple[Any, int]] = {}  # token -> (payload, signed at, epoch s)

    def serializer(self) -> URLSafeTimedSerializer:
        key = get_settings().secret_key
        if self._serializer is None or key != self._key:
            self._serializer = URLSafeTimedSerializer(key, salt=self.salt)
            self._key = key
            self._verified.clear()
        return self._serializer

    def dumps(self, payload: Any) -> str:
        return str(self.serializer().dumps(payload))

    def loads(self, token: str, max_age: int) -> Any:
        """The payload of a token signed with this kind's salt no more than max_age seconds ago.
        Raises itsdangerous's SignatureExpired or BadSignature (BadData) as its loads does."""
        serializer = self.serializer()
        known = self._verified.get(token)
        if known is None:
            payload, signed_at = serializer.loads(token, max_age=max_age, return_timestamp=True)
            known = (payload, int(signed_at.timestamp()))
            self._verified[token] = known
            _forget_oldest(self._verified)
        age = int(time.time()) - known[1]
        if age > max_age or age < 0:
            raise SignatureExpired(f"Signature age {age} > {max_age} seconds", payload=known[0])
        return known[0]


def _forget_oldest(remembered: dict[str, Any]) -> None:
    """Drop the oldest entries past REMEMBERED. Called from the event loop and from threadpool
    threads at once: two callers may pick the same oldest entry, so the second finds it gone (no
    KeyError into a request) and goes on until the size is back under the limit."""
    while len(remembered) > REMEMBERED:
        try:
            remembered.pop(next(iter(remembered)), None)
        except (StopIteration, RuntimeError):  # emptied, or changed under the iterator: look again
            continue


_peeked: dict[str, Any] = {}


def peek(token: str) -> Any:
    """A token's payload WITHOUT checking its signature: only to choose which kind to verify it as.
    None when it is not one of these tokens at all. A payload that is an object is remembered like
    verified tokens; anything else is not (junk costs its decoding each time, never memory)."""
    if token in _peeked:
        return _peeked[token]
    head = token.split(".", 1)[0]
    payload = None
    if head and len(head) <= 4096:  # a compressed payload starts with "." (we never compress)
        try:
            payload = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        except (ValueError, BadPayload, RecursionError):
            payload = None
    if isinstance(payload, dict):
        _peeked[token] = payload
        _forget_oldest(_peeked)
    return payload
