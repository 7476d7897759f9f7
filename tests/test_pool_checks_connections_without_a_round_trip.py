"""The pool hands out a connection without a round trip to PostgreSQL, and never one that
PostgreSQL has ended.

peewee's pool checked every idle connection it handed out with a `SELECT 1`: one round trip per
checkout, nine per order in the web door. A connection whose server process has ended (a
terminated backend, a restart) has the server's farewell waiting on its socket, so one poll of
the socket tells the two apart."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import pytest

from models.infra.db import ShopDatabase, db, make_database
from tasks.connection import connected


@pytest.fixture
def pool() -> Iterator[ShopDatabase]:
    database = make_database(os.environ["DATABASE_URL"], max_connections=2)
    yield database
    database.close_all()


def backend_pid(pool: ShopDatabase) -> int:
    with pool.connection_context():
        return int(pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


@contextmanager
def observer() -> Iterator[Any]:
    """A cursor on a connection of its own, in autocommit: within one transaction PostgreSQL would
    answer every read of pg_stat_activity from the snapshot of the first."""
    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def last_statement(pid: int) -> str:
    with observer() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
        return str(cursor.fetchone()[0])


def test_checking_out_an_idle_connection_sends_nothing(pool: ShopDatabase) -> None:
    with pool.connection_context():
        pid = int(pool.execute_sql("SELECT pg_backend_pid() AS marker").fetchone()[0])

    with pool.connection_context():  # the same connection, from the pool
        assert last_statement(pid) == "SELECT pg_backend_pid() AS marker"  # no SELECT 1 went before
        assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] == pid


def terminate(pid: int) -> None:
    """End a server process as `pg_terminate_backend` (or a restart) does, and wait for it to exit."""
    with observer() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # pg_terminate_backend only signals: wait for the exit
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.02)
    pytest.fail(f"backend {pid} did not exit")


def test_a_connection_whose_server_process_ended_is_not_handed_out(pool: ShopDatabase) -> None:
    terminate(pid := backend_pid(pool))

    with pool.connection_context():  # a fresh connection, and the query runs: no error reaches the caller
        assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_a_worker_replaces_its_kept_connection_once_the_server_ended_it(pool: ShopDatabase) -> None:
    """A worker process keeps its connection between tasks (tasks/connection.py): after a restart,
    the next task runs on a new connection instead of failing its first query and retrying."""
    original = db.obj
    db.initialize(pool)
    try:
        with connected():
            pid = int(db.obj.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
        terminate(pid)

        with connected():
            assert db.obj.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        if not db.obj.is_closed():
            db.obj.close()
        db.initialize(original)


def test_a_worker_replaces_a_kept_connection_psycopg2_has_marked_closed(pool: ShopDatabase) -> None:
    """A query that failed on a broken connection leaves it closed on psycopg2's side while peewee
    still holds it: the next task must connect afresh, not fail on it (and so every task after)."""
    original = db.obj
    db.initialize(pool)
    try:
        with connected():
            kept = db.obj.connection()
        kept.close()  # as psycopg2 does to a connection whose query found it broken

        with connected():
            assert db.obj.connection() is not kept
            assert db.obj.execute_sql("SELECT 1").fetchone() == (1,)
    finally:
        if not db.obj.is_closed():
            db.obj.close()
        db.initialize(original)
