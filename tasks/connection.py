"""Each worker process keeps one database connection from task to task.

Checking a connection out of the pool for every task cost a `SELECT 1` round trip (the pool's
liveness check) per task: three per confirmed order. A connection that broke (PostgreSQL
restarted) fails its task's first query with OperationalError or InterfaceError; it is then
closed for good, and the task's retry (every task retries on INFRA_ERRORS, tasks/pipeline.py)
connects afresh."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peewee import InterfaceError, OperationalError

from models.infra.db import db


@contextmanager
def connected() -> Iterator[None]:
    """Run the block on this process's connection, connecting first if it has none."""
    if db.obj.is_closed():
        db.obj.connect()
    try:
        yield
    except (OperationalError, InterfaceError):
        if not db.obj.is_closed():
            db.obj.manual_close()  # not back to the pool: the next task connects afresh
        raise
