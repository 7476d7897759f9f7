"""Accounts: registration, login, token refresh and logout."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import bcrypt
from peewee import IntegrityError

from models.accounts import login_limits, tokens
from models.errors import AuthError, Conflict
from models.infra import fences, ratelimit
from models.infra.db import db, select_rows
from models.infra.settings import get_settings
from models.tables import UsedRefreshToken, User, utcnow

log = logging.getLogger("shop.accounts")
_dummy_hashes: dict[int, bytes] = {}


def _dummy_hash() -> bytes:
    """A real hash of a random password at the configured cost: login for an unknown email spends
    the same bcrypt time as a wrong password for a known one, whatever BCRYPT_ROUNDS says."""
    rounds = get_settings().bcrypt_rounds
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds=rounds))
    return _dummy_hashes[rounds]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=get_settings().bcrypt_rounds)).decode()


def _password_ok(password: str, hashed: bytes) -> bool:
    return bcrypt.checkpw(password.encode()[:72], hashed)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def register(
    email: str, password: str, full_name: str, phone: str | None, client: str, locale: str | None = None
) -> User:
    """Create an active customer (locale: the language of their emails, ko or en; None follows
    DEFAULT_LOCALE); raises Conflict email_taken, RateLimited."""
    ratelimit.hit(get_settings().register_rate_limit, "register", client)
    email = normalize_email(email)
    try:
        with db.atomic():
            return User.create(
                email=email,
                hashed_password=hash_password(password),
                full_name=full_name.strip(),
                phone=phone,
                locale=locale,
            )
    except IntegrityError:
        raise Conflict("email_taken", "An account with this email already exists.", field="email") from None


def auth_fence(user_id: int) -> str:
    """The change fence of what decides whether a user's access token is good (token_version,
    is_active, is_admin): move it around every write of those (models/infra/fences.py)."""
    return f"fence:user:{user_id}"


def create_admin(email: str, password: str, full_name: str = "Administrator") -> User:
    """Create or promote an administrator with this password (manage.py create-admin).

    Resetting an existing account to a new password revokes every token it holds, as logout does:
    the reset is how an operator rotates a leaked password, and the leaked session must end with it.
    """
    email = normalize_email(email)
    # Promoting or re-activating only widens what a token may read, and a status copy that still
    # says otherwise is re-read within web/orders/status_reader.COPY_MAX_AGE: not fenced.
    with db.atomic():
        user = User.get_or_none(User.email == email)
        if user is None:
            return User.create(
                email=email,
                hashed_password=hash_password(password),
                full_name=full_name,
                is_admin=True,
                is_verified=True,
            )
        changed = not _password_ok(password, user.hashed_password.encode())
        user.hashed_password = hash_password(password)
        user.is_admin = user.is_active = True
        user.updated_at = utcnow()
        user.save()
    if changed:
        logout(user)
        user = User.get_by_id(user.id)
    return user


def issue_tokens(user: User) -> TokenPair:
    return TokenPair(
        access_token=tokens.sign(user.id, user.token_version, tokens.ACCESS),
        refresh_token=tokens.sign(user.id, user.token_version, tokens.REFRESH),
        expires_in=get_settings().access_token_ttl,
    )


def login(email: str, password: str, client: str) -> TokenPair:
    """Check credentials; raises AuthError invalid_credentials (same for unknown email), RateLimited.

    The attempt is counted before the password is checked (models/accounts/login_limits.py)."""
    email = normalize_email(email)
    attempt = login_limits.begin(client, email)
    user = User.get_or_none(User.email == email)
    ok = _password_ok(password, user.hashed_password.encode() if user else _dummy_hash())
    if not (user and ok and user.is_active):
        raise AuthError("invalid_credentials", "The email or password is incorrect.")
    login_limits.succeeded(attempt)
    return issue_tokens(user)


def user_for(claims: tokens.TokenClaims) -> User:
    # Every authenticated request reads it: a statement built and prepared once (models/infra/db.py).
    found = select_rows(User, "accounts:user", lambda: User.select().where(User.id == 0), claims.user_id)
    user = found[0] if found else None
    if user is None:
        raise no_longer_valid()
    check_current(claims, user.is_active, user.token_version)
    return user


def check_current(claims: tokens.TokenClaims, is_active: bool, token_version: int) -> None:
    """Raises AuthError not_authenticated unless the token's user is active and the token carries
    their current token_version (logout and a password change move it on). For a caller that read
    the user's row with something else (POST /orders/{id}/pay, with the order's lock)."""
    if not is_active or token_version != claims.version:
        raise no_longer_valid()


def no_longer_valid() -> AuthError:
    return AuthError("not_authenticated", "The token is no longer valid; log in again.")


def authenticate(access_token: str) -> User:
    """The user an access token belongs to; raises AuthError not_authenticated / token_expired."""
    return user_for(tokens.verify(access_token, tokens.ACCESS))


def refresh(refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair, once. A reused token revokes every session of the user.

    The used token is recorded in PostgreSQL (used_refresh_tokens), in its own statement: a
    second use finds it there after any restart of Redis or of the process.
    Raises AuthError not_authenticated / token_expired.
    """
    claims = tokens.verify(refresh_token, tokens.REFRESH)
    user = user_for(claims)
    expires = utcnow() + timedelta(seconds=get_settings().refresh_token_ttl)
    first_use = db.obj.execute_sql(
        "INSERT INTO used_refresh_tokens (jti, user_id, used_at, expires_at) VALUES (%s, %s, now(), %s) "
        "ON CONFLICT (jti) DO NOTHING RETURNING jti",
        (claims.jti, user.id, expires),
    ).fetchone()
    if first_use is None:
        logout(user)
        log.warning("refresh token reused: every session of user %s revoked", user.id, extra={"user_id": user.id})
        raise AuthError("not_authenticated", "This refresh token was already used; log in again.")
    return issue_tokens(user)


PROFILE_FIELDS = ("full_name", "phone", "locale")


def update_profile(user: User, changes: dict[str, object]) -> User:
    """Change the customer's own full_name, phone or locale (None: follow DEFAULT_LOCALE for locale)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    if changes:
        with db.atomic():
            User.update(**changes, updated_at=utcnow()).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def prune_used_refresh_tokens() -> int:
    """Forget used refresh tokens that have expired (they fail verification anyway); returns how many."""
    return int(UsedRefreshToken.delete().where(UsedRefreshToken.expires_at < utcnow()).execute())


def logout(user: User) -> None:
    """Revoke every outstanding token of the user (they carry the old token_version)."""
    with fences.writing(auth_fence(user.id)):
        User.update(token_version=User.token_version + 1, updated_at=utcnow()).where(User.id == user.id).execute()
