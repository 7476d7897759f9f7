"""010: the roadmap's tables. Discount codes as data (discounts, discount_uses, orders.discount_id
and discount_held), the stock ledger with an opening balance per product, reviews with the
products' rating counters, the admin dashboard's order and shipment indexes, and the product
announcement trigger taught that a rating change, like a stock change, concerns one product only.

Data: the codes of the retired DISCOUNT_CODES setting (default `WELCOME10=10%`) become discounts
without limits, once, here; the setting is read nowhere else.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("shop.migrate")

STATEMENTS = [
    # Discounts
    """CREATE TABLE "discounts" ("id" SERIAL NOT NULL PRIMARY KEY, "code" VARCHAR(64) NOT NULL, "kind" VARCHAR(8) NOT NULL CHECK (kind IN ('percent', 'fixed')), "value" BIGINT NOT NULL CHECK (value > 0), "min_subtotal" BIGINT NOT NULL CHECK (min_subtotal >= 0), "starts_at" TIMESTAMPTZ, "ends_at" TIMESTAMPTZ, "usage_limit" INTEGER CHECK (usage_limit >= 0), "per_customer_limit" INTEGER CHECK (per_customer_limit >= 1), "used_count" INTEGER NOT NULL CHECK (used_count >= 0), "active" BOOLEAN NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL, CHECK (kind <> 'percent' OR value <= 100), CHECK (usage_limit IS NULL OR used_count <= usage_limit), CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at))""",
    """CREATE UNIQUE INDEX "discounts_code" ON "discounts" ("code")""",
    """CREATE TABLE "discount_uses" ("id" SERIAL NOT NULL PRIMARY KEY, "discount_id" INTEGER NOT NULL, "user_id" INTEGER NOT NULL, "used_count" INTEGER NOT NULL CHECK (used_count >= 0), FOREIGN KEY ("discount_id") REFERENCES "discounts" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)""",
    """CREATE INDEX "discount_uses_user_id" ON "discount_uses" ("user_id")""",
    """CREATE UNIQUE INDEX "discount_uses_discount_id_user_id" ON "discount_uses" ("discount_id", "user_id")""",
    """ALTER TABLE "orders" ADD COLUMN "discount_id" INTEGER REFERENCES "discounts" ("id") ON DELETE SET NULL""",
    """ALTER TABLE "orders" ADD COLUMN "discount_held" BOOLEAN NOT NULL DEFAULT FALSE""",
    """CREATE INDEX "orders_discount_id" ON "orders" ("discount_id")""",
    # The admin dashboard's figures
    """CREATE INDEX "orders_paid_at_paid" ON "orders" ("paid_at") WHERE ("payment_status" = 'paid')""",
    """CREATE INDEX "orders_created_at_status" ON "orders" ("created_at", "status")""",
    """CREATE INDEX "orders_waiting_status_updated_at" ON "orders" ("status", "updated_at") WHERE ("status" IN ('pending', 'reserved', 'confirmed', 'shipped'))""",
    """CREATE INDEX "shipments_failing" ON "shipments" ("order_id") WHERE (("failures" >= 3) OR ("stopped_reason" = 'gave_up'))""",
    # The stock ledger, opened with each product's stock on hand
    """CREATE TABLE "stock_ledger" ("id" BIGSERIAL NOT NULL PRIMARY KEY, "product_id" INTEGER NOT NULL, "delta" INTEGER NOT NULL CHECK (delta <> 0), "stock_after" INTEGER NOT NULL CHECK (stock_after >= 0), "reason" VARCHAR(16) NOT NULL CHECK (reason IN ('initial', 'reservation', 'release', 'restock', 'adjustment', 'return')), "order_id" INTEGER, "actor" VARCHAR(80) NOT NULL, "note" VARCHAR(500), "at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE CASCADE, FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE SET NULL)""",
    """CREATE INDEX "stock_ledger_order_id" ON "stock_ledger" ("order_id")""",
    """CREATE INDEX "stock_ledger_product_id_id" ON "stock_ledger" ("product_id", "id")""",
    """INSERT INTO "stock_ledger" ("product_id", "delta", "stock_after", "reason", "actor", "note", "at")
       SELECT "id", "stock_quantity", "stock_quantity", 'initial', 'system:migration-010', 'opening balance', now()
       FROM "products" WHERE "stock_quantity" <> 0""",
    # Reviews and the products' rating counters
    """ALTER TABLE "products" ADD COLUMN "rating_count" INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0)""",
    """ALTER TABLE "products" ADD COLUMN "rating_sum" INTEGER NOT NULL DEFAULT 0""",
    """ALTER TABLE "products" ADD CHECK (rating_sum BETWEEN rating_count AND 5 * rating_count)""",
    """CREATE TABLE "reviews" ("id" SERIAL NOT NULL PRIMARY KEY, "product_id" INTEGER NOT NULL, "user_id" INTEGER NOT NULL, "order_id" INTEGER, "rating" SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5), "title" VARCHAR(200) NOT NULL, "body" TEXT NOT NULL, "author_name" VARCHAR(100) NOT NULL, "hidden" BOOLEAN NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL, FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE, FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE SET NULL)""",
    """CREATE INDEX "reviews_user_id" ON "reviews" ("user_id")""",
    """CREATE UNIQUE INDEX "reviews_product_id_user_id" ON "reviews" ("product_id", "user_id")""",
    """CREATE INDEX "reviews_published_by_product" ON "reviews" ("product_id", "created_at", "id") WHERE ("hidden" = FALSE)""",
]

# 004's announcement, plus 'rating:<id>' when an UPDATE changed only a product's rating counters:
# the catalogue cache drops that product's page as it does for a stock change.
ANNOUNCE = """CREATE OR REPLACE FUNCTION announce_product_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_LEVEL = 'ROW' AND (to_jsonb(NEW) - 'stock_quantity' - 'updated_at')
                              = (to_jsonb(OLD) - 'stock_quantity' - 'updated_at') THEN
        PERFORM pg_notify('products_changed', 'stock:' || NEW.id);
      ELSIF TG_LEVEL = 'ROW' AND (to_jsonb(NEW) - 'rating_count' - 'rating_sum' - 'updated_at')
                                 = (to_jsonb(OLD) - 'rating_count' - 'rating_sum' - 'updated_at') THEN
        PERFORM pg_notify('products_changed', 'rating:' || NEW.id);
      ELSE
        PERFORM pg_notify('products_changed', '*');
      END IF;
      RETURN NULL;
    END $$"""
ANNOUNCE_004 = """CREATE OR REPLACE FUNCTION announce_product_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_LEVEL = 'ROW' AND (to_jsonb(NEW) - 'stock_quantity' - 'updated_at')
                              = (to_jsonb(OLD) - 'stock_quantity' - 'updated_at') THEN
        PERFORM pg_notify('products_changed', 'stock:' || NEW.id);
      ELSE
        PERFORM pg_notify('products_changed', '*');
      END IF;
      RETURN NULL;
    END $$"""

RETIRED_DEFAULT = "WELCOME10=10%"


def retired_codes(raw: str) -> list[tuple[str, str, int]]:
    """DISCOUNT_CODES ("WELCOME10=10%,SAVE5000=5000") as (code, kind, value); bad items are skipped."""
    out = []
    for item in raw.split(","):
        code, _, rule = item.partition("=")
        code, rule = code.strip().upper(), rule.strip()
        try:
            kind, value = ("percent", int(rule[:-1])) if rule.endswith("%") else ("fixed", int(rule))
        except ValueError:
            kind, value = "", 0
        if not code or len(code) > 64 or value <= 0 or (kind == "percent" and value > 100):
            if item.strip():
                log.warning("DISCOUNT_CODES item %r skipped: not CODE=percent%% or CODE=amount", item)
            continue
        out.append((code, kind, value))
    return out


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)
    migrator.sql(ANNOUNCE)
    from models.infra.settings import get_settings

    get_settings()  # reads .env into the environment, where DISCOUNT_CODES was read from
    for code, kind, value in retired_codes(os.environ.get("DISCOUNT_CODES", RETIRED_DEFAULT)):
        migrator.sql(
            """INSERT INTO "discounts" ("code", "kind", "value", "min_subtotal", "used_count", "active",
                                                 "created_at", "updated_at")
                        VALUES (%s, %s, %s, 0, 0, TRUE, now(), now()) ON CONFLICT ("code") DO NOTHING""",
            code,
            kind,
            value,
        )


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql(ANNOUNCE_004)
    for table in ("reviews", "stock_ledger"):
        migrator.sql(f'DROP TABLE IF EXISTS "{table}"')
    for index in (
        "shipments_failing",
        "orders_waiting_status_updated_at",
        "orders_created_at_status",
        "orders_paid_at_paid",
    ):
        migrator.sql(f'DROP INDEX IF EXISTS "{index}"')
    migrator.sql('ALTER TABLE "products" DROP COLUMN IF EXISTS "rating_sum", DROP COLUMN IF EXISTS "rating_count"')
    migrator.sql('ALTER TABLE "orders" DROP COLUMN IF EXISTS "discount_held", DROP COLUMN IF EXISTS "discount_id"')
    migrator.sql('DROP TABLE IF EXISTS "discount_uses"')
    migrator.sql('DROP TABLE IF EXISTS "discounts"')
