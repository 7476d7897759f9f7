"""Resolving `Authorization: Bearer <token>` to a user."""

from __future__ import annotations

from starlette.requests import Request

from models.accounts import service as accounts
from models.errors import AuthError
from models.tables import User
from web.api import raw_header, run

# The tokens this API signs are 60-200 characters. A longer one is refused before any decoding, so
# a request cannot make a process decode, verify or remember kilobytes of junk.
MAX_TOKEN_LENGTH = 1024


def bearer_token(request: Request) -> str | None:
    """The request's bearer token; None when it sends none. Raises AuthError not_authenticated for
    one longer than any this API signs."""
    header = raw_header(request, b"authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("not_authenticated", "The token is invalid.")
    return token.strip()


async def current_user(request: Request, required: bool = True) -> User | None:
    """The authenticated user; raises AuthError when required and absent or invalid."""
    token = bearer_token(request)
    if token is None:
        if required:
            raise AuthError("not_authenticated", "Send an access token as 'Authorization: Bearer <token>'.")
        return None
    user = await run(accounts.authenticate, token)
    request.state.user_id = user.id
    return user


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
