"""007: what real payments need: the order's gateway details (a virtual account and the hash of
its deposit secret), reconciliation's flag and last check, an index to find an order by its
gateway reference, and each webhook event's type and order."""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    'ALTER TABLE "orders" ADD COLUMN "payment_details" JSONB',
    'ALTER TABLE "orders" ADD COLUMN "payment_flag" VARCHAR(200)',
    'ALTER TABLE "orders" ADD COLUMN "payment_flagged_at" TIMESTAMPTZ',
    'ALTER TABLE "orders" ADD COLUMN "payment_checked_at" TIMESTAMPTZ',
    """CREATE INDEX "orders_payment_flagged" ON "orders" ("payment_flagged_at") WHERE ("payment_flag" IS NOT NULL)""",
    """CREATE INDEX "orders_payment_transaction_id" ON "orders" ("payment_transaction_id") WHERE ("payment_transaction_id" IS NOT NULL)""",
    'ALTER TABLE "webhook_events" ADD COLUMN "event_type" VARCHAR(64)',
    'ALTER TABLE "webhook_events" ADD COLUMN "order_id" INTEGER',
    """ALTER TABLE "webhook_events" ADD FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE SET NULL""",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('ALTER TABLE "webhook_events" DROP COLUMN IF EXISTS "order_id"')
    migrator.sql('ALTER TABLE "webhook_events" DROP COLUMN IF EXISTS "event_type"')
    migrator.sql('DROP INDEX IF EXISTS "orders_payment_transaction_id"')
    migrator.sql('DROP INDEX IF EXISTS "orders_payment_flagged"')
    for column in ("payment_checked_at", "payment_flagged_at", "payment_flag", "payment_details"):
        migrator.sql(f'ALTER TABLE "orders" DROP COLUMN IF EXISTS "{column}"')
