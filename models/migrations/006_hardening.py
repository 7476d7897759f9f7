"""006: what hardening needs to survive restarts: used refresh tokens in PostgreSQL (reuse
detection must not forget on a Redis restart)."""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    """CREATE TABLE "used_refresh_tokens" ("jti" VARCHAR(64) NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "used_at" TIMESTAMPTZ NOT NULL, "expires_at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "used_refresh_tokens_user_id" ON "used_refresh_tokens" ("user_id")""",
    """CREATE INDEX "used_refresh_tokens_expires_at" ON "used_refresh_tokens" ("expires_at")""",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('DROP TABLE IF EXISTS "used_refresh_tokens"')
