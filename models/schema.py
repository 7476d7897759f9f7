"""Versioned migrations (peewee-migrate's runner over hand-written files in models/migrations)."""

from __future__ import annotations

import logging
from pathlib import Path

from peewee import Database
from peewee_migrate import Router

from models.infra.db import db, init_db

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("shop.migrate")


def router(database: Database | None = None) -> Router:
    """The migration runner for database (default: the configured one)."""
    return Router(database or init_db(), migrate_dir=str(MIGRATIONS_DIR), ignore=["basemodel"], logger=log)


def migrate() -> list[str]:
    """Apply every migration not yet applied; returns the names applied (empty when up to date)."""
    r = router()
    pending = list(r.diff)
    if pending:
        # One advisory lock so that two processes migrating at once do not race.
        with db.obj.connection_context():
            db.obj.execute_sql("SELECT pg_advisory_lock(727272)")
            try:
                pending = list(r.diff)
                r.run()
            finally:
                db.obj.execute_sql("SELECT pg_advisory_unlock(727272)")
    return pending
