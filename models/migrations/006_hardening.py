"""006: used refresh tokens in PostgreSQL (reuse detection must not forget on a Redis restart), and
when each email was last attempted (the re-drive leaves an email alone while Celery still retries it)."""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    """CREATE TABLE "used_refresh_tokens" ("jti" VARCHAR(64) NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "used_at" TIMESTAMPTZ NOT NULL, "expires_at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "used_refresh_tokens_user_id" ON "used_refresh_tokens" ("user_id")""",
    """CREATE INDEX "used_refresh_tokens_expires_at" ON "used_refresh_tokens" ("expires_at")""",
    'ALTER TABLE "email_log" ADD COLUMN "last_attempt_at" TIMESTAMPTZ',
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('ALTER TABLE "email_log" DROP COLUMN IF EXISTS "last_attempt_at"')
    migrator.sql('DROP TABLE IF EXISTS "used_refresh_tokens"')
