"""Signed, timed tokens (itsdangerous) with a purpose salt: a refresh token is never an access token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired

from models.errors import AuthError
from models.infra.settings import get_settings
from models.infra.signed import SignedTokens

ACCESS = "access"
REFRESH = "refresh"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int
    jti: str
    purpose: str


_KINDS = {purpose: SignedTokens(f"shop.{purpose}") for purpose in (ACCESS, REFRESH)}


def _serializer(purpose: str) -> SignedTokens:
    return _KINDS[purpose]


def sign(user_id: int, version: int, purpose: str) -> str:
    return _serializer(purpose).dumps({"uid": user_id, "ver": version, "jti": secrets.token_urlsafe(12)})


def verify(token: str, purpose: str) -> TokenClaims:
    """Check signature, purpose and age; raises AuthError token_expired / not_authenticated."""
    settings = get_settings()
    max_age = settings.access_token_ttl if purpose == ACCESS else settings.refresh_token_ttl
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise AuthError("token_expired", "The token has expired; refresh it or log in again.") from None
    except BadSignature:
        raise AuthError("not_authenticated", "The token is invalid.") from None
    if not isinstance(data, dict) or not {"uid", "ver", "jti"} <= data.keys():
        raise AuthError("not_authenticated", "The token is invalid.")
    return TokenClaims(int(data["uid"]), int(data["ver"]), str(data["jti"]), purpose)
