"""011: seed_runs, the data loads done once per database (the demo catalogue of `make run`).

A database seeded before this table existed counts as seeded: its demo products are there, or
were deliberately changed or deleted by an administrator, and must not come back."""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    'CREATE TABLE "seed_runs" ("name" VARCHAR(64) NOT NULL PRIMARY KEY, '
    '"applied_at" TIMESTAMP WITH TIME ZONE NOT NULL)',
    """INSERT INTO "seed_runs" ("name", "applied_at")
       SELECT 'demo-catalogue', now() WHERE EXISTS (SELECT 1 FROM "products" WHERE left("sku", 5) = 'DEMO-')""",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('DROP TABLE IF EXISTS "seed_runs"')
