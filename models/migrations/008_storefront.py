"""008: what the storefront additions need (CONTRACT.md "Storefront and admin additions").

Guest checkout: orders.user_id becomes nullable and a guest's order keeps the guest's email, phone
and name (a CHECK says an order has an account or a guest email, never both); a guest's
Idempotency-Key has no user, so such keys get their own unique index.

The order desk (GET /admin/orders): indexes for its filters, sort and prefix search.

Demo images: the demo catalogue named /static/demo/<slug>.jpg files that never existed; the app
now draws /static/demo/<slug>.svg placeholders (web/demo_images.py), so demo products already
loaded point there.
"""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    'ALTER TABLE "orders" ALTER COLUMN "user_id" DROP NOT NULL',
    'ALTER TABLE "orders" ADD COLUMN "guest_email" VARCHAR(254)',
    'ALTER TABLE "orders" ADD COLUMN "guest_phone" VARCHAR(32)',
    'ALTER TABLE "orders" ADD COLUMN "guest_name" VARCHAR(100)',
    'ALTER TABLE "orders" ADD CONSTRAINT "orders_check" CHECK ((user_id IS NULL) = (guest_email IS NOT NULL))',
    'ALTER TABLE "idempotency_keys" ALTER COLUMN "user_id" DROP NOT NULL',
    """CREATE UNIQUE INDEX "idempotency_keys_guest_key" ON "idempotency_keys" ("key") WHERE ("user_id" IS NULL)""",
    # The order desk (GET /admin/orders): every filter's index ends in the sort (created_at, id);
    # (status, created_at, id) replaces the status index. q matches prefixes through pattern indexes.
    'DROP INDEX IF EXISTS "orders_status"',
    """CREATE INDEX "orders_created_at" ON "orders" ("created_at", "id")""",
    """CREATE INDEX "orders_status_created_at" ON "orders" ("status", "created_at", "id")""",
    """CREATE INDEX "orders_payment_status_created_at" ON "orders" ("payment_status", "created_at", "id")""",
    """CREATE INDEX "orders_number_pattern" ON "orders" (order_number text_pattern_ops)""",
    """CREATE INDEX "orders_guest_email_pattern" ON "orders" (guest_email text_pattern_ops) WHERE ("guest_email" IS NOT NULL)""",
    """CREATE INDEX "orders_recipient_pattern" ON "orders" (lower(shipping_address ->> 'recipient_name') text_pattern_ops)""",
    """CREATE INDEX "users_email_pattern" ON "users" (email text_pattern_ops)""",
    """UPDATE "products" SET "images" = jsonb_build_array(regexp_replace("images"->>0, '\\.jpg$', '.svg'))
       WHERE left("sku", 5) = 'DEMO-' AND jsonb_array_length("images") = 1 AND "images"->>0 ~ '^/static/demo/[a-z0-9-]+\\.jpg$'""",
]

ROLLBACK = [
    """UPDATE "products" SET "images" = jsonb_build_array(regexp_replace("images"->>0, '\\.svg$', '.jpg'))
       WHERE left("sku", 5) = 'DEMO-' AND jsonb_array_length("images") = 1 AND "images"->>0 ~ '^/static/demo/[a-z0-9-]+\\.svg$'""",
    'DROP INDEX IF EXISTS "users_email_pattern"',
    'DROP INDEX IF EXISTS "orders_recipient_pattern"',
    'DROP INDEX IF EXISTS "orders_guest_email_pattern"',
    'DROP INDEX IF EXISTS "orders_number_pattern"',
    'DROP INDEX IF EXISTS "orders_payment_status_created_at"',
    'DROP INDEX IF EXISTS "orders_status_created_at"',
    'DROP INDEX IF EXISTS "orders_created_at"',
    'CREATE INDEX "orders_status" ON "orders" ("status")',
    'DROP INDEX IF EXISTS "idempotency_keys_guest_key"',
    'DELETE FROM "idempotency_keys" WHERE "user_id" IS NULL',
    'ALTER TABLE "idempotency_keys" ALTER COLUMN "user_id" SET NOT NULL',
    'ALTER TABLE "orders" DROP CONSTRAINT IF EXISTS "orders_check"',
    # Guest orders cannot survive a schema without them.
    'DELETE FROM "orders" WHERE "user_id" IS NULL',
    'ALTER TABLE "orders" ALTER COLUMN "user_id" SET NOT NULL',
    'ALTER TABLE "orders" DROP COLUMN IF EXISTS "guest_name"',
    'ALTER TABLE "orders" DROP COLUMN IF EXISTS "guest_phone"',
    'ALTER TABLE "orders" DROP COLUMN IF EXISTS "guest_email"',
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in ROLLBACK:
        migrator.sql(statement)
