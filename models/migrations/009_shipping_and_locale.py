"""009: shipment tracking and the customer's email language.

- users.locale: ko or en, null following DEFAULT_LOCALE;
- shipments: one row per shipped order, what the carrier last said and when to ask it next
  (the partial index serves the poller's "due now" query);
- order_events_tracking_once: a carrier scan (an order event of type tracking_event, keyed by
  detail->>'key') is recorded once per order however often the carrier lists it.
"""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    """ALTER TABLE "users" ADD COLUMN "locale" VARCHAR(2) CHECK (locale IN ('ko', 'en'))""",
    """CREATE TABLE "shipments" ("order_id" INTEGER NOT NULL PRIMARY KEY, "level" INTEGER NOT NULL, "status_text" VARCHAR(64), "delivered" BOOLEAN NOT NULL, "next_poll_at" TIMESTAMPTZ, "last_polled_at" TIMESTAMPTZ, "last_success_at" TIMESTAMPTZ, "failures" INTEGER NOT NULL, "last_error" VARCHAR(200), "stopped_reason" VARCHAR(16), "created_at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "shipments_due" ON "shipments" ("next_poll_at") WHERE ("next_poll_at" IS NOT NULL)""",
    """CREATE UNIQUE INDEX "order_events_tracking_once" ON "order_events" ("order_id", (detail ->> 'key')) WHERE ("type" = 'tracking_event')""",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('DROP INDEX IF EXISTS "order_events_tracking_once"')
    migrator.sql('DROP TABLE IF EXISTS "shipments"')
    migrator.sql('ALTER TABLE "users" DROP COLUMN IF EXISTS "locale"')
