"""The database handle: one Peewee proxy, bound to DATABASE_URL by `init_db`."""

from __future__ import annotations

import hashlib
import re
import select
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlparse

from peewee import BaseQuery, DatabaseProxy, Model, ModelObjectCursorWrapper
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


# Statements prepared once per connection, then run by EXECUTE: their text -> (name, the text with
# PostgreSQL's $n placeholders, the EXECUTE's arguments in psycopg2's placeholders). PostgreSQL
# plans a plain statement at every run; for an order locked with its payer, planning was three
# quarters of the server's CPU (0.50 ms a run against 0.15 prepared).
_PREPARABLE: dict[str, tuple[str, str, str]] = {}
_PLACEHOLDER = re.compile(r"%%|%s|%\((\w+)\)s")
# The names prepared on each connection, or _UNSURE after a round trip that carried a PREPARE
# failed (PREPARE outlives a rollback, so what ran before the failure stays prepared).
_UNSURE: frozenset[str] = frozenset()
_prepared_on: weakref.WeakKeyDictionary[Any, set[str] | frozenset[str]] = weakref.WeakKeyDictionary()


def prepared(sql: str) -> str:
    """Mark `sql` (psycopg2's placeholders: all %s, or all %(name)s) to be prepared on a connection
    at its first run there and run by EXECUTE afterwards, when the settings allow
    (DB_PREPARED_STATEMENTS); returns sql. For statements whose best plan does not depend on their
    values (a lookup, an insert, an update by key), and that name their columns: a `*` would fail
    once a migration adds a column ("cached plan must not change result type")."""
    if sql not in _PREPARABLE:
        if "$" in sql:
            raise ValueError("a statement to prepare takes psycopg2's placeholders, not $n")
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group() == "%%":
                return "%%"  # still formatted by psycopg2 with the EXECUTE's parameters
            key = match.group(1) or str(len(names))  # %s: one parameter each; %(name)s: one per name
            if key not in names:
                names.append(key)
            return f"${names.index(key) + 1}"

        text = _PLACEHOLDER.sub(number, sql)
        if "%s" in sql and any(match.group(1) for match in _PLACEHOLDER.finditer(sql)):
            raise ValueError("a statement to prepare takes %s or %(name)s placeholders, not both")
        arguments = ", ".join(f"%({key})s" if not key.isdigit() else "%s" for key in names)
        _PREPARABLE[sql] = ("shop_" + hashlib.sha1(sql.encode()).hexdigest()[:20], text, arguments)
    return sql


INT4 = range(-(2**31), 2**31)


def _fits(params: Any) -> bool:
    """Whether every integer among the parameters fits PostgreSQL's integer. A prepared statement's
    parameter takes the type of the column it meets: `id = $1` is an integer, and a larger value
    (a path's id of 2**63 - 1, say) fails with "integer out of range" where the plain statement
    compares it as a bigint and finds no row. Such a statement runs plain."""
    values = params.values() if isinstance(params, dict) else params or ()
    for value in values:
        if type(value) is int and value not in INT4:
            return False
        if type(value) is list and not _fits(value):
            return False
    return True


def prepared_names() -> dict[str, str]:
    """The name each statement marked `prepared` runs under: name -> its SQL (for reading logs)."""
    return {name: sql for sql, (name, _, _) in _PREPARABLE.items()}


class ShopDatabase(PooledPostgresqlDatabase):  # type: ignore[misc]  # playhouse has no type stubs
    """Peewee's pooled PostgreSQL database, with fewer round trips per transaction:

    - its BEGIN is sent with its first statement ("BEGIN; SELECT ... FOR UPDATE"), not in a round
      trip of its own, and a transaction that runs no statement sends neither BEGIN nor COMMIT;
    - a write whose outcome nobody reads (`write_later`: an order's update under its lock, an
      event's insert) is sent with the transaction's next statement, or with its COMMIT. Each step
      of the pipeline writes the order and its event, then commits: one round trip instead of three;
    - a statement marked `prepared` is prepared on the connection with its first run (in the same
      round trip) and run by EXECUTE after that, so PostgreSQL plans it once per connection.
    """

    prepare_statements = False  # make_database sets it from the settings

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
        writes = getattr(self._state, "writes", None)
        if writes is None or writes[0] is not self._state.conn:
            empty: tuple[Any, list[str], list[str]] = (self._state.conn, [], [])
            self._state.writes = writes = empty
        sql, preparing = self._as_prepared(sql, params, writes[2])
        writes[1].append(self.cursor().mogrify(sql, params).decode())
        writes[2].extend(preparing)

    def _take_writes(self) -> tuple[str, list[str]]:
        """The writes waiting for this thread's connection, as one text (emptied), with the names
        of the statements it prepares."""
        writes = getattr(self._state, "writes", None)
        self._state.writes = None
        if writes is None or writes[0] is not self._state.conn or not writes[1]:
            return "", []
        return "; ".join(writes[1]) + "; ", writes[2]

    def _as_prepared(self, sql: str, params: Any, preparing: list[str]) -> tuple[str, list[str]]:
        """sql, or the EXECUTE of its prepared statement, preceded by its PREPARE when this
        connection has not prepared it yet (nor will have once `preparing` is sent); with what it
        prepares ("" for a DEALLOCATE ALL first, after a failure left the connection unsure)."""
        entry = _PREPARABLE.get(sql) if self.prepare_statements else None
        if entry is None or not _fits(params):
            return sql, []
        if self._state.conn is None:
            self.cursor()  # connects, as peewee would for the statement

        name, text, arguments = entry
        run = f"EXECUTE {name}({arguments})" if arguments else f"EXECUTE {name}"
        known = _prepared_on.get(self._state.conn, set())
        if name in preparing or ("" not in preparing and name in known):
            return run, []
        if known is _UNSURE and "" not in preparing:
            return f"DEALLOCATE ALL; PREPARE {name} AS {text}; {run}", ["", name]
        return f"PREPARE {name} AS {text}; {run}", [name]

    def _sent(self, preparing: list[str], send: Callable[[], T]) -> T:
        """send() a round trip that prepares `preparing`; then this connection knows them, or,
        when it failed, is unsure of what it has prepared."""
        try:
            result = send()
        except BaseException:
            if preparing and self._state.conn is not None:
                _prepared_on[self._state.conn] = _UNSURE
            raise
        conn = self._state.conn
        known = _prepared_on.get(conn) if preparing else None
        if "" in preparing:  # a DEALLOCATE ALL ran first: only what came after it is prepared
            _prepared_on[conn] = set(preparing[len(preparing) - preparing[::-1].index("") :])
        elif preparing and known is None:
            _prepared_on[conn] = set(preparing)
        elif preparing and known is not _UNSURE:
            cast(set[str], known).update(preparing)
        return result

    def _execute_cursor(self, sql: str, params: Any, **cursor_options: Any) -> Any:
        begin = "BEGIN; " if self._owes_begin() else ""
        writes, preparing = self._take_writes()
        head = begin + writes
        if head and cursor_options:  # a named (server-side) cursor takes one statement: the rest first
            self._log_query(head, None)
            with peewee_errors:
                self._sent(preparing, lambda: self.cursor().execute(head))
            head, preparing = "", []
        if not cursor_options:
            sql, more = self._as_prepared(sql, params, preparing)
            preparing = preparing + more
        if head:  # peewee formats the whole text with the statement's parameters: escape what is done
            sql = head.replace("%", "%%") + sql
        return self._sent(preparing, lambda: super(ShopDatabase, self)._execute_cursor(sql, params, **cursor_options))

    def commit(self) -> None:
        owed = self._owes_begin()
        writes, preparing = self._take_writes()
        if not writes:
            if not owed:
                super().commit()
            return
        sql = ("BEGIN; " if owed else "") + writes + "COMMIT"
        self._log_query(sql, None)
        with peewee_errors:
            self._sent(preparing, lambda: self.cursor().execute(sql))

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
    database = ShopDatabase(
        name,
        max_connections=max_connections,
        stale_timeout=300,
        timeout=wait,
        connect_timeout=5,
        **params,
    )
    database.prepare_statements = get_settings().db_prepared_statements
    return database


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
        return prepared(sql), len(placeholders)

    sql, count = _built(("select", key, model), statement)
    if count != len(params):
        raise TypeError(f"{key}: the query takes {count} parameters, given {len(params)}")
    return raw_rows(model, sql, *params)


def raw_rows(model: type[M], sql: str, *params: Any) -> list[M]:
    """The rows of `sql` as `model` instances, as `list(model.raw(sql, *params))` makes them, but
    with the columns matched to the model's fields once per process and statement: peewee matches
    them (`_resolve_model_columns`) on every query, which cost more of the pipeline's Python than
    building the instances (README "Where the time goes"). For a statement whose columns do not
    depend on its parameters (anything but `*` over a table a migration may change mid-process)."""
    cursor = model._meta.database.execute_sql(sql, params)
    reading = _readings.get((model, sql))
    if reading is None:  # peewee's own matching, as `model.raw` runs it, kept
        wrapper = ModelObjectCursorWrapper(cursor, model, [], model)
        wrapper.initialize()
        names, converters = wrapper.unique_columns, wrapper.converters
        reading = [(i, names[i], None) for i in wrapper.no_convert]
        reading += [(i, names[i], converters[i]) for i in wrapper.convert]
        _readings[(model, sql)] = reading
    rows: list[M] = []
    for row in cursor.fetchall():
        values = {name: row[i] if convert is None else convert(row[i]) for i, name, convert in reading}
        instance: Any = model(__no_default__=1, **values)
        instance._dirty.clear()
        rows.append(instance)
    return rows


_readings: dict[tuple[type[Model], str], list[tuple[int, str, Any]]] = {}


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
        return prepared(f'UPDATE "{meta.table_name}" SET {columns} WHERE "{meta.primary_key.column_name}" = %s')

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
        return prepared(f'INSERT INTO "{meta.table_name}" ({columns}) VALUES ({values}){returning}')

    sql = _built(("insert", later, type(instance), *(field.name for field in fields)), statement)
    params = [field.db_value(obj.__data__[field.name]) for field in fields]
    obj._dirty.clear()
    if later:
        meta.database.write_later(sql, params)
        return instance
    row = meta.database.execute_sql(sql, params).fetchone()
    obj._pk = row[0]
    return instance
