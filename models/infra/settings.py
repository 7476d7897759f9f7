"""Settings, read once from the environment (and a `.env` file when present).

No secret has a default here: a process without SECRET_KEY refuses to start (ConfigError), except
under the test suite (APP_ENV=test), which may run on a random key of its own. `make run` keeps a
generated key in var/secret_key (manage.py).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
# Keys that shipped as defaults in earlier versions of this code: refused like a missing key.
PUBLISHED_SECRETS = frozenset({"dev-insecure-secret-change-me", "change-me", "test-secret"})
MIN_SECRET_LENGTH = 32


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _per_currency(name: str, default: str) -> dict[str, int]:
    """NAME="KRW=3000,USD=500": an amount in minor units per currency; raises ConfigError when malformed."""
    raw = os.environ.get(name)
    out: dict[str, int] = {}
    for item in _list(default if raw is None else raw):
        currency, _, amount = item.partition("=")
        if not currency.strip().isalpha() or not amount.strip().isdigit():
            raise ConfigError(f"{name}: expected CURRENCY=amount pairs (minor units), got {item!r}")
        out[currency.strip().upper()] = int(amount.strip())
    return out


# Shipping fees and free-shipping thresholds per currency (minor units); see README "Configuration".
SHIPPING_DEFAULTS = {
    "SHIPPING_STANDARD_FEE": "KRW=3000,USD=500,EUR=500,JPY=300",
    "SHIPPING_EXPRESS_FEE": "KRW=6000,USD=1500,EUR=1500,JPY=800",
    "SHIPPING_STANDARD_FREE_OVER": "KRW=50000,USD=5000,EUR=5000,JPY=5000",
    "SHIPPING_EXPRESS_FREE_OVER": "",
}


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    # LISTEN and the migrations' session lock need a session of their own: a server connection
    # that stays theirs. DATABASE_URL may go through a transaction pooler (PgBouncer), this may not.
    database_direct_url: str
    redis_url: str
    broker_url: str
    secret_key: str
    access_token_ttl: int
    refresh_token_ttl: int
    cors_origins: list[str]
    allowed_hosts: list[str]
    forwarded_allow_ips: list[str]
    max_body_bytes: int
    currency: str
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_tls: str
    mail_from: str
    ops_email: str
    shop_name: str
    storefront_url: str
    default_locale: str
    stripe_api_key: str
    stripe_publishable_key: str
    stripe_webhook_secret: str
    stripe_api_base: str
    toss_secret_key: str
    toss_client_key: str
    toss_api_base: str
    payment_http_timeout: float
    payment_reconcile_after: int
    reservation_ttl: int
    cart_ttl: int
    abandoned_cart_after: int
    sweettracker_api_key: str
    sweettracker_api_base: str
    tracking_poll_interval: int
    max_line_quantity: int
    login_rate_limit: str
    register_rate_limit: str
    db_max_connections: int
    # The pipeline's hottest statements are prepared once per connection (models/infra/db.py). Off
    # by default when DATABASE_DIRECT_URL differs from DATABASE_URL: a transaction pooler in between
    # hands each transaction another server connection, where the statement was never prepared.
    db_prepared_statements: bool
    failpoints: bool
    bcrypt_rounds: int
    stuck_after: int
    catalog_cache_ttl: float
    catalog_product_ttl: float
    log_level: str
    celery_visibility_timeout: int
    celery_unacked_restore_interval: int
    celery_unacked_restore_throttle: int
    # method -> the fee in CURRENCY, and the subtotal from which it is free (None: never free)
    shipping_fees: dict[str, int]
    shipping_free_over: dict[str, int | None]
    order_token_ttl: int
    order_lookup_rate_limit: str
    guest_checkout_rate_limit: str

    @property
    def is_production(self) -> bool:
        return self.env == "production"


class ConfigError(RuntimeError):
    """The configuration cannot run (for example no SECRET_KEY)."""


def _secret_key(env: str) -> str:
    """SECRET_KEY from the environment; raises ConfigError when it is missing, short or published.

    Only the test suite (APP_ENV=test) may run without one: it gets a random key for this process.
    """
    key = os.environ.get("SECRET_KEY", "").strip()
    if env == "test":
        return key or secrets.token_urlsafe(32)
    if not key:
        raise ConfigError(
            "SECRET_KEY is not set: every process that signs or checks tokens needs it. "
            "Generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'` "
            "(`make run` keeps one in var/secret_key)."
        )
    if key in PUBLISHED_SECRETS or len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"SECRET_KEY must be a random value of at least {MIN_SECRET_LENGTH} characters "
            "that never appeared in code or docs."
        )
    return key


def load_settings() -> Settings:
    """Read the environment into Settings; raises ConfigError for a configuration that cannot run."""
    load_dotenv(ROOT / ".env", override=False)
    env = os.environ.get("APP_ENV", "development").strip().lower()
    redis_url = os.environ.get("REDIS_URL", "").strip()
    currency = os.environ.get("CURRENCY", "KRW").strip().upper() or "KRW"
    database_url = os.environ.get("DATABASE_URL", "").strip()
    settings = Settings(
        env=env,
        database_url=database_url,
        database_direct_url=os.environ.get("DATABASE_DIRECT_URL", "").strip() or database_url,
        redis_url=redis_url,
        broker_url=os.environ.get("CELERY_BROKER_URL", "").strip() or redis_url,
        secret_key=_secret_key(env),
        access_token_ttl=_int("ACCESS_TOKEN_TTL", 15 * 60),
        refresh_token_ttl=_int("REFRESH_TOKEN_TTL", 14 * 24 * 3600),
        cors_origins=_list(os.environ.get("CORS_ORIGINS")),
        allowed_hosts=_list(os.environ.get("ALLOWED_HOSTS")) or ["*"],
        # The proxies whose X-Forwarded-For / -Proto are believed (addresses or networks); none
        # by default, so no client can choose the address its rate limits are counted under.
        forwarded_allow_ips=_list(os.environ.get("FORWARDED_ALLOW_IPS")),
        max_body_bytes=_int("MAX_BODY_BYTES", 1024 * 1024),
        currency=currency,
        smtp_host=os.environ.get("SMTP_HOST", "").strip(),
        smtp_port=_int("SMTP_PORT", 25),
        smtp_user=os.environ.get("SMTP_USER", ""),
        smtp_password=os.environ.get("SMTP_PASSWORD", ""),
        smtp_tls=(os.environ.get("SMTP_TLS", "none").strip().lower() or "none"),
        mail_from=os.environ.get("MAIL_FROM", "shop@localhost"),
        ops_email=os.environ.get("OPS_EMAIL", ""),
        shop_name=os.environ.get("SHOP_NAME", "").strip() or "Shop",
        storefront_url=os.environ.get("STOREFRONT_URL", "").strip().rstrip("/"),
        default_locale=(os.environ.get("DEFAULT_LOCALE", "ko").strip().lower() or "ko"),
        stripe_api_key=os.environ.get("STRIPE_API_KEY", ""),
        stripe_publishable_key=os.environ.get("STRIPE_PUBLISHABLE_KEY", ""),
        stripe_webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        stripe_api_base=os.environ.get("STRIPE_API_BASE", "").strip(),
        toss_secret_key=os.environ.get("TOSS_SECRET_KEY", ""),
        toss_client_key=os.environ.get("TOSS_CLIENT_KEY", ""),
        toss_api_base=os.environ.get("TOSS_API_BASE", "").strip(),
        payment_http_timeout=float(os.environ.get("PAYMENT_HTTP_TIMEOUT", "10") or 10),
        payment_reconcile_after=_int("PAYMENT_RECONCILE_AFTER", 300),
        reservation_ttl=_int("RESERVATION_TTL", 15 * 60),
        cart_ttl=_int("CART_TTL", 7 * 24 * 3600),
        abandoned_cart_after=_int("ABANDONED_CART_AFTER", 24 * 3600),
        sweettracker_api_key=os.environ.get("SWEETTRACKER_API_KEY", "").strip(),
        sweettracker_api_base=os.environ.get("SWEETTRACKER_API_BASE", "").strip().rstrip("/"),
        tracking_poll_interval=_int("TRACKING_POLL_INTERVAL", 1800),
        max_line_quantity=_int("MAX_LINE_QUANTITY", 99),
        login_rate_limit=os.environ.get("LOGIN_RATE_LIMIT", "10/minute"),
        register_rate_limit=os.environ.get("REGISTER_RATE_LIMIT", "20/hour"),
        db_max_connections=_int("DB_MAX_CONNECTIONS", 20),
        db_prepared_statements=_bool(
            os.environ.get("DB_PREPARED_STATEMENTS"),
            default=(os.environ.get("DATABASE_DIRECT_URL", "").strip() or database_url) == database_url,
        ),
        failpoints=_bool(os.environ.get("FAILPOINTS")),
        bcrypt_rounds=_int("BCRYPT_ROUNDS", 12),
        stuck_after=_int("STUCK_AFTER", 30),
        catalog_cache_ttl=float(os.environ.get("CATALOG_CACHE_TTL", "2") or 2),
        catalog_product_ttl=float(os.environ.get("CATALOG_PRODUCT_TTL", "60") or 60),
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        celery_visibility_timeout=_int("CELERY_VISIBILITY_TIMEOUT", 300),
        celery_unacked_restore_interval=_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
        celery_unacked_restore_throttle=_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
        **_shipping(currency),
        order_token_ttl=_int("ORDER_TOKEN_TTL", 30 * 24 * 3600),
        order_lookup_rate_limit=os.environ.get("ORDER_LOOKUP_RATE_LIMIT", "10/minute"),
        guest_checkout_rate_limit=os.environ.get("GUEST_CHECKOUT_RATE_LIMIT", "30/hour"),
    )
    if settings.default_locale not in {"ko", "en"}:
        raise ConfigError("DEFAULT_LOCALE must be ko or en")
    if settings.tracking_poll_interval < 60:
        raise ConfigError("TRACKING_POLL_INTERVAL must be at least 60 seconds")
    if settings.smtp_tls not in {"starttls", "ssl", "none"}:
        raise ConfigError("SMTP_TLS must be one of starttls, ssl, none")
    return settings


def _shipping(currency: str) -> dict[str, dict[str, Any]]:
    """The shipping settings for the shop's currency; raises ConfigError when a method has no fee in it."""
    tables = {name: _per_currency(name, default) for name, default in SHIPPING_DEFAULTS.items()}
    fees: dict[str, int] = {}
    free_over: dict[str, int | None] = {}
    for method in ("standard", "express"):
        fee = tables[f"SHIPPING_{method.upper()}_FEE"].get(currency)
        if fee is None:
            raise ConfigError(f"SHIPPING_{method.upper()}_FEE has no amount for CURRENCY={currency}")
        fees[method] = fee
        free_over[method] = tables[f"SHIPPING_{method.upper()}_FREE_OVER"].get(currency)
    return {"shipping_fees": fees, "shipping_free_over": free_over}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
