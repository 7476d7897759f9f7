"""Versioned migrations (peewee-migrate's runner over hand-written files in models/migrations)."""

from __future__ import annotations

import logging
from pathlib import Path

from peewee import Database
from peewee_migrate import Router

from models.infra.db import init_db, make_database
from models.infra.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("shop.migrate")


def router(database: Database | None = None) -> Router:
    """The migration runner for database (default: the configured one)."""
    return Router(database or init_db(), migrate_dir=str(MIGRATIONS_DIR), ignore=["basemodel"], logger=log)


def migrate() -> list[str]:
    """Apply every migration not yet applied, over DATABASE_DIRECT_URL; returns the names applied
    (empty when up to date)."""
    # One connection of its own on the direct URL, not the app's pool: the advisory lock below
    # belongs to the server session, which a pooler in transaction mode would hand to another
    # client after the SELECT (and the unlock would then run in a session that does not hold it).
    database = make_database(get_settings().database_direct_url, max_connections=1)
    try:
        r = router(database)
        pending = list(r.diff)
        if pending:
            # One advisory lock so that two processes migrating at once do not race.
            with database.connection_context():
                database.execute_sql("SELECT pg_advisory_lock(727272)")
                try:
                    pending = list(r.diff)
                    r.run()
                finally:
                    database.execute_sql("SELECT pg_advisory_unlock(727272)")
        return pending
    finally:
        database.close_all()
