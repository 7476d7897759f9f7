"""001: the seed's tables plus order events, idempotency keys, the email log and webhook events.

Written as literal SQL (not generated at run time) so that this migration never changes once
shipped; tests/test_migrations.py proves the migrated schema equals the models' schema.
"""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    """CREATE TABLE "users" ("id" SERIAL NOT NULL PRIMARY KEY, "email" VARCHAR(254) NOT NULL, "phone" VARCHAR(32), "full_name" VARCHAR(100) NOT NULL, "hashed_password" VARCHAR(128) NOT NULL, "is_active" BOOLEAN NOT NULL, "is_verified" BOOLEAN NOT NULL, "is_admin" BOOLEAN NOT NULL, "token_version" INTEGER NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL)""",
    """CREATE UNIQUE INDEX "users_email" ON "users" ("email")""",
    """CREATE TABLE "addresses" ("id" SERIAL NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "recipient_name" VARCHAR(100) NOT NULL, "phone" VARCHAR(32) NOT NULL, "postal_code" VARCHAR(16) NOT NULL, "address_line1" VARCHAR(200) NOT NULL, "address_line2" VARCHAR(200), "city" VARCHAR(100) NOT NULL, "is_default" BOOLEAN NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "addresses_user_id" ON "addresses" ("user_id")""",
    """CREATE UNIQUE INDEX "addresses_one_default_per_user" ON "addresses" ("user_id") WHERE ("is_default" = TRUE)""",
    """CREATE TABLE "products" ("id" SERIAL NOT NULL PRIMARY KEY, "sku" VARCHAR(64) NOT NULL, "name" VARCHAR(200) NOT NULL, "slug" VARCHAR(220) NOT NULL, "description" TEXT NOT NULL, "price" BIGINT NOT NULL CHECK (price >= 0), "compare_at_price" BIGINT, "cost_price" BIGINT, "stock_quantity" INTEGER NOT NULL CHECK (stock_quantity >= 0), "low_stock_threshold" INTEGER NOT NULL, "track_inventory" BOOLEAN NOT NULL, "category" VARCHAR(100), "tags" JSONB NOT NULL, "images" JSONB NOT NULL, "is_published" BOOLEAN NOT NULL, "is_featured" BOOLEAN NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL)""",
    """CREATE UNIQUE INDEX "products_sku" ON "products" ("sku")""",
    """CREATE UNIQUE INDEX "products_slug" ON "products" ("slug")""",
    """CREATE INDEX "products_category" ON "products" ("category")""",
    """CREATE INDEX "products_tags" ON "products" USING GIN ("tags")""",
    """CREATE TABLE "orders" ("id" SERIAL NOT NULL PRIMARY KEY, "order_number" VARCHAR(40) NOT NULL, "user_id" INTEGER NOT NULL, "status" VARCHAR(16) NOT NULL, "payment_status" VARCHAR(16) NOT NULL, "currency" VARCHAR(3) NOT NULL, "subtotal" BIGINT NOT NULL CHECK (subtotal >= 0), "shipping_fee" BIGINT NOT NULL CHECK (shipping_fee >= 0), "discount_amount" BIGINT NOT NULL CHECK (discount_amount >= 0), "total" BIGINT NOT NULL CHECK (total >= 0), "shipping_address" JSONB NOT NULL, "shipping_method" VARCHAR(16) NOT NULL, "tracking_number" VARCHAR(64), "carrier" VARCHAR(64), "discount_code" VARCHAR(64), "payment_method" VARCHAR(16) NOT NULL, "payment_gateway" VARCHAR(16) NOT NULL, "payment_transaction_id" VARCHAR(200), "payment_proof" JSONB, "failure_reason" VARCHAR(32), "failure_detail" JSONB, "stock_held" BOOLEAN NOT NULL, "reserved_until" TIMESTAMPTZ, "session_id" VARCHAR(128), "version" INTEGER NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL, "paid_at" TIMESTAMPTZ, "payment_submitted_at" TIMESTAMPTZ, "shipped_at" TIMESTAMPTZ, "delivered_at" TIMESTAMPTZ, "cancelled_at" TIMESTAMPTZ, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE RESTRICT)""",
    """CREATE UNIQUE INDEX "orders_order_number" ON "orders" ("order_number")""",
    """CREATE INDEX "orders_user_id" ON "orders" ("user_id")""",
    """CREATE INDEX "orders_status" ON "orders" ("status")""",
    """CREATE INDEX "orders_user_id_created_at" ON "orders" ("user_id", "created_at")""",
    """CREATE TABLE "order_items" ("id" SERIAL NOT NULL PRIMARY KEY, "order_id" INTEGER NOT NULL, "product_id" INTEGER, "product_name" VARCHAR(200) NOT NULL, "product_sku" VARCHAR(64) NOT NULL, "product_image" TEXT, "unit_price" BIGINT NOT NULL CHECK (unit_price >= 0), "quantity" INTEGER NOT NULL CHECK (quantity > 0), "subtotal" BIGINT NOT NULL CHECK (subtotal >= 0), FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE, FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE SET NULL)""",
    """CREATE INDEX "order_items_order_id" ON "order_items" ("order_id")""",
    """CREATE INDEX "order_items_product_id" ON "order_items" ("product_id")""",
    """CREATE TABLE "order_events" ("id" SERIAL NOT NULL PRIMARY KEY, "order_id" INTEGER NOT NULL, "type" VARCHAR(40) NOT NULL, "from_status" VARCHAR(16), "to_status" VARCHAR(16), "detail" JSONB NOT NULL, "task_id" VARCHAR(64), "at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "order_events_order_id" ON "order_events" ("order_id")""",
    """CREATE TABLE "idempotency_keys" ("id" SERIAL NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "key" VARCHAR(255) NOT NULL, "request_hash" VARCHAR(64) NOT NULL, "order_id" INTEGER, "created_at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE, FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "idempotency_keys_user_id" ON "idempotency_keys" ("user_id")""",
    """CREATE INDEX "idempotency_keys_order_id" ON "idempotency_keys" ("order_id")""",
    """CREATE UNIQUE INDEX "idempotency_keys_user_id_key" ON "idempotency_keys" ("user_id", "key")""",
    """CREATE TABLE "email_log" ("id" SERIAL NOT NULL PRIMARY KEY, "order_id" INTEGER, "kind" VARCHAR(40) NOT NULL, "recipient" VARCHAR(254) NOT NULL, "message_id" VARCHAR(200) NOT NULL, "status" VARCHAR(16) NOT NULL, "attempts" INTEGER NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "sent_at" TIMESTAMPTZ, FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "email_log_order_id" ON "email_log" ("order_id")""",
    """CREATE UNIQUE INDEX "email_log_message_id" ON "email_log" ("message_id")""",
    """CREATE TABLE "webhook_events" ("id" SERIAL NOT NULL PRIMARY KEY, "gateway" VARCHAR(16) NOT NULL, "event_id" VARCHAR(200) NOT NULL, "received_at" TIMESTAMPTZ NOT NULL)""",
    """CREATE UNIQUE INDEX "webhook_events_gateway_event_id" ON "webhook_events" ("gateway", "event_id")""",
]

TABLES = [
    "webhook_events",
    "email_log",
    "idempotency_keys",
    "order_events",
    "order_items",
    "orders",
    "products",
    "addresses",
    "users",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for table in TABLES:
        migrator.sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
