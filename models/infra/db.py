"""The database handle: one Peewee proxy, bound to DATABASE_URL by `init_db`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlparse

from peewee import BaseQuery, DatabaseProxy, Model
from playhouse.pool import PooledPostgresqlDatabase

from models.infra.settings import get_settings

db = DatabaseProxy()


def connect_params(url: str) -> tuple[str, dict[str, object]]:
    """Split a postgresql:// URL into (database name, psycopg2 connect kwargs)."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {parsed.scheme!r}")
    params: dict[str, object] = {}
    if parsed.hostname:
        params["host"] = parsed.hostname
    if parsed.port:
        params["port"] = parsed.port
    if parsed.username:
        params["user"] = unquote(parsed.username)
    if parsed.password:
        params["password"] = unquote(parsed.password)
    for key, values in parse_qs(parsed.query).items():
        params[key] = values[-1]
    return unquote(parsed.path.lstrip("/")) or "postgres", params


def make_database(url: str, max_connections: int = 20) -> PooledPostgresqlDatabase:
    name, params = connect_params(url)
    return PooledPostgresqlDatabase(
        name,
        max_connections=max_connections,
        stale_timeout=300,
        timeout=10,
        connect_timeout=5,
        **params,
    )


def init_db(url: str | None = None) -> PooledPostgresqlDatabase:
    """Bind the proxy to the configured database (idempotent per URL)."""
    settings = get_settings()
    url = url or settings.database_url
    if not url:
        raise RuntimeError("DATABASE_URL is not set (run through `python manage.py` for embedded defaults)")
    current = db.obj
    if current is not None and getattr(current, "_shop_url", None) == url:
        return current
    database = make_database(url, settings.db_max_connections)
    database._shop_url = url
    db.initialize(database)
    return database


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


def tuples(query: BaseQuery) -> Iterable[tuple[Any, ...]]:
    """The query's rows as tuples: `query.tuples()`, typed. Peewee's stubs say `.tuples()` returns the
    query unchanged, whose rows would then be model instances; they are tuples."""
    return cast("Iterable[tuple[Any, ...]]", query.tuples())
