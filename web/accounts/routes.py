"""`/auth`: register, login, me, refresh, logout."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from models.accounts import service as accounts
from models.tables import User
from web.accounts.render import user_json
from web.accounts.schemas import LoginIn, ProfilePatch, RefreshIn, RegisterIn, TokenOut, UserOut
from web.api import Registry, run
from web.auth import client_address

api = Registry()
TAGS = ["auth"]


def _pair(pair: accounts.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }


@api.route(
    "POST",
    "/auth/register",
    summary="Create a customer account",
    tags=TAGS,
    body=RegisterIn,
    response=UserOut,
    status=201,
    errors=["email_taken", "validation_error", "rate_limited"],
)
async def register(request: Request, body: RegisterIn) -> dict[str, Any]:
    user = await run(
        accounts.register, body.email, body.password, body.full_name, body.phone, client_address(request), body.locale
    )
    return user_json(user)


@api.route(
    "POST",
    "/auth/login",
    summary="Exchange email and password for tokens",
    tags=TAGS,
    body=LoginIn,
    response=TokenOut,
    errors=["invalid_credentials", "validation_error", "rate_limited"],
)
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    return _pair(await run(accounts.login, body.email, body.password, client_address(request)))


@api.route(
    "GET",
    "/auth/me",
    summary="The authenticated user",
    tags=TAGS,
    response=UserOut,
    auth="user",
    errors=["not_authenticated", "token_expired"],
)
async def me(request: Request, user: User) -> dict[str, Any]:
    return user_json(user)


@api.route(
    "PATCH",
    "/auth/me",
    summary="Change the caller's name, phone or email language (locale)",
    tags=TAGS,
    body=ProfilePatch,
    response=UserOut,
    auth="user",
    errors=["not_authenticated", "token_expired", "validation_error"],
)
async def update_me(request: Request, user: User, body: ProfilePatch) -> dict[str, Any]:
    return user_json(await run(accounts.update_profile, user, body.model_dump(exclude_unset=True)))


@api.route(
    "POST",
    "/auth/refresh",
    summary="Trade a refresh token (single use) for a new pair",
    tags=TAGS,
    body=RefreshIn,
    response=TokenOut,
    errors=["not_authenticated", "token_expired", "validation_error"],
)
async def refresh(request: Request, body: RefreshIn) -> dict[str, Any]:
    return _pair(await run(accounts.refresh, body.refresh_token))


@api.route(
    "POST",
    "/auth/logout",
    summary="Revoke every outstanding token of the caller",
    tags=TAGS,
    status=204,
    auth="user",
    errors=["not_authenticated", "token_expired"],
)
async def logout(request: Request, user: User) -> Response:
    await run(accounts.logout, user)
    return Response(status_code=204)
