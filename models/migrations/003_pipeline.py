"""003: orders.payment_next_action, what the client needs to pay once stock is reserved."""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    'ALTER TABLE "orders" ADD COLUMN "payment_next_action" JSONB',
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('ALTER TABLE "orders" DROP COLUMN IF EXISTS "payment_next_action"')
