"""The database handle: one Peewee proxy, bound to DATABASE_URL by `init_db`."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlparse

from peewee import BaseQuery, DatabaseProxy, Model
from peewee import __exception_wrapper__ as peewee_errors  # type: ignore[attr-defined]  # its error mapping
from playhouse.pool import PooledPostgresqlDatabase
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

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


class ShopDatabase(PooledPostgresqlDatabase):  # type: ignore[misc]  # playhouse has no type stubs
    """Peewee's pooled PostgreSQL database, with fewer round trips per transaction:

    - its BEGIN is sent with its first statement ("BEGIN; SELECT ... FOR UPDATE"), not in a round
      trip of its own, and a transaction that runs no statement sends neither BEGIN nor COMMIT;
    - a write whose outcome nobody reads (`write_later`: an order's update under its lock, an
      event's insert) is sent with the transaction's next statement, or with its COMMIT. Each step
      of the pipeline writes the order and its event, then commits: one round trip instead of three.
    """

    def begin(self, isolation_level: Any = None) -> None:
        self._take_writes()  # none are left from an earlier transaction, but never send a stranger's
        if isolation_level is not None:
            super().begin(isolation_level)
            return
        self.cursor()  # connects now if need be, as peewee's BEGIN would (connecting resets the state)
        self._state.begin_on = self._state.conn  # this thread's connection owes a BEGIN

    def _owes_begin(self) -> bool:
        conn = getattr(self._state, "begin_on", None)
        self._state.begin_on = None
        return conn is not None and conn is self._state.conn

    def write_later(self, sql: str, params: Any) -> None:
        """Run a write inside the current transaction, sent with its next statement (which then
        sees it) or with its COMMIT; outside a transaction, at once. Its failure (there should be
        none: the caller holds the row's lock) is raised by that statement, or by the commit, which
        then rolls the transaction back, as any failed commit does. Not for a write whose row count
        or RETURNING someone reads."""
        if not self.in_transaction():
            self.execute_sql(sql, params)
            return
        text = self.cursor().mogrify(sql, params).decode()
        writes = getattr(self._state, "writes", None)
        if writes is None or writes[0] is not self._state.conn:
            self._state.writes = writes = (self._state.conn, [])
        writes[1].append(text)

    def _take_writes(self) -> str:
        """The writes waiting for this thread's connection, as one text (emptied)."""
        writes = getattr(self._state, "writes", None)
        self._state.writes = None
        if writes is None or writes[0] is not self._state.conn or not writes[1]:
            return ""
        return "; ".join(writes[1]) + "; "

    def _execute_cursor(self, sql: str, params: Any, **cursor_options: Any) -> Any:
        head = ("BEGIN; " if self._owes_begin() else "") + self._take_writes()
        if head and cursor_options:  # a named (server-side) cursor takes one statement: the rest first
            self._log_query(head, None)
            with peewee_errors:
                self.cursor().execute(head)
        elif head:  # peewee formats the whole text with the statement's parameters: escape what is done
            sql = head.replace("%", "%%") + sql
        return super()._execute_cursor(sql, params, **cursor_options)

    def commit(self) -> None:
        owed, writes = self._owes_begin(), self._take_writes()
        if not writes:
            if not owed:
                super().commit()
            return
        sql = ("BEGIN; " if owed else "") + writes + "COMMIT"
        self._log_query(sql, None)
        with peewee_errors:
            self.cursor().execute(sql)

    def rollback(self) -> None:
        self._take_writes()
        if not self._owes_begin():
            super().rollback()

    def _is_closed(self, conn: Any) -> bool:
        """Whether a pooled connection is unfit to hand out. peewee asks an idle one `SELECT 1`: a
        round trip per checkout, nine per order in the web door; `server_ended` needs none. A
        connection that is not idle gets peewee's own check (a rollback, or discarded when its
        state is unknown)."""
        if conn.closed:
            return True
        if conn.get_transaction_status() != TRANSACTION_STATUS_IDLE:
            return bool(super()._is_closed(conn))
        return server_ended(conn)


def server_ended(conn: Any) -> bool:
    """Whether PostgreSQL has ended this idle connection (its backend terminated, the server
    restarted), without a round trip: the server's farewell (an error message, then the end of
    the stream) is waiting on the socket, while a live idle connection has nothing to read (no
    connection of ours but the web's own LISTEN gets unprompted messages). One that psycopg2 has
    already marked closed (a query of it failed on a broken connection) has ended too."""
    if conn.closed:
        return True
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def make_database(url: str, max_connections: int = 20, wait: float = 10) -> PooledPostgresqlDatabase:
    """A pool of up to max_connections; a caller finding none free waits up to `wait` seconds, then
    gets MaxConnectionsExceeded (the web answers 503)."""
    name, params = connect_params(url)
    return ShopDatabase(
        name,
        max_connections=max_connections,
        stale_timeout=300,
        timeout=wait,
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


# Statements of the order pipeline's hottest paths, built once per process. Peewee builds a query's
# SQL in Python on every call, field by field: for the orders table's forty-odd columns, locking a
# row and saving it cost more CPU than PostgreSQL spends running both (README "Where the time goes").
_statements: dict[tuple[Any, ...], Any] = {}
M = TypeVar("M", bound=Model)
T = TypeVar("T")


def _built(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """What build() makes for this key, made on the first call of the process."""
    if key not in _statements:
        _statements[key] = build()
    return cast(T, _statements[key])


def select_rows(model: type[M], key: str, build: Callable[[], BaseQuery], *params: Any) -> list[M]:
    """The rows of the query build() makes, as `model` instances; its SQL is built once per process
    under `key` (one key per call site: "module:what"). build's values are placeholders: `params`
    replace them, in the order the query takes its parameters (its WHERE clauses as written)."""

    def statement() -> tuple[str, int]:
        sql, placeholders = build().sql()
        return sql, len(placeholders)

    sql, count = _built(("select", key, model), statement)
    if count != len(params):
        raise TypeError(f"{key}: the query takes {count} parameters, given {len(params)}")
    return list(model.raw(sql, *params))


def save_changed(instance: Model, later: bool = False) -> int:
    """UPDATE only the columns changed since the instance was read (peewee's dirty fields) in one
    statement built once per set of columns; returns the rows updated (0 when nothing changed).
    The caller holds the row's lock, so unchanged columns need no rewrite. later: sent with the
    transaction's next statement or its commit (`ShopDatabase.write_later`); returns 1 then."""
    obj: Any = instance  # peewee's private parts, which its stubs do not know
    fields = obj.dirty_fields
    if not fields:
        return 0
    meta = obj._meta

    def statement() -> str:
        columns = ", ".join(f'"{field.column_name}" = %s' for field in fields)
        return f'UPDATE "{meta.table_name}" SET {columns} WHERE "{meta.primary_key.column_name}" = %s'

    sql = _built(("update", type(instance), *(field.name for field in fields)), statement)
    params = [field.db_value(obj.__data__.get(field.name)) for field in fields]
    obj._dirty.clear()
    if later:
        meta.database.write_later(sql, [*params, obj._pk])
        return 1
    cursor = meta.database.execute_sql(sql, [*params, obj._pk])
    return int(cursor.rowcount)


def insert(instance: M, later: bool = False) -> M:
    """INSERT a new instance (its fields as given, defaults filled in by its constructor) by a
    statement built once per set of columns; sets and returns it with its new primary key. later:
    sent with the transaction's next statement or its commit (`ShopDatabase.write_later`), and
    the instance's primary key stays unset."""
    obj: Any = instance
    meta = obj._meta
    pk = meta.primary_key
    fields = [f for f in meta.sorted_fields if f.name in obj.__data__ and not (f is pk and obj._pk is None)]

    def statement() -> str:
        columns = ", ".join(f'"{field.column_name}"' for field in fields)
        values = ", ".join("%s" for _ in fields)
        returning = "" if later else f' RETURNING "{pk.column_name}"'
        return f'INSERT INTO "{meta.table_name}" ({columns}) VALUES ({values}){returning}'

    sql = _built(("insert", later, type(instance), *(field.name for field in fields)), statement)
    params = [field.db_value(obj.__data__[field.name]) for field in fields]
    obj._dirty.clear()
    if later:
        meta.database.write_later(sql, params)
        return instance
    row = meta.database.execute_sql(sql, params).fetchone()
    obj._pk = row[0]
    return instance
