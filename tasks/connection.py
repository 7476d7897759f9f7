"""Each worker process keeps one database connection from task to task.

Before each task, a connection that PostgreSQL has ended (a restart, a terminated backend) is
seen without a round trip (`server_ended`) and replaced. One that breaks during a task fails its
query with OperationalError or InterfaceError; it is then closed for good, and the task's retry
(every task retries on INFRA_ERRORS, tasks/pipeline.py) connects afresh."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peewee import InterfaceError, OperationalError

from models.infra.db import db, server_ended


@contextmanager
def connected() -> Iterator[None]:
    """Run the block on this process's connection, connecting first if it has none."""
    if not db.obj.is_closed() and server_ended(db.obj.connection()):
        db.obj.manual_close()
    if db.obj.is_closed():
        db.obj.connect()
    try:
        yield
    except (OperationalError, InterfaceError):
        if not db.obj.is_closed():
            db.obj.manual_close()  # not back to the pool: the next task connects afresh
        raise
