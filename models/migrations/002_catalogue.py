"""002: the catalogue's listing indexes (filters, sorts, text search) and the pg_trgm extension.

Storefront listings always filter on is_published, so the sort indexes are partial on it and end
in id, the tie-breaker that keeps pages stable. models/tables.py declares the same indexes by the
same names; tests/test_catalogue_query_plans.py shows the planner using them on a large catalogue.
"""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    """CREATE EXTENSION IF NOT EXISTS pg_trgm""",
    # sort=-created_at (the default) and created_at; also the featured / in_stock filters' fallback
    """CREATE INDEX "products_published_created_at" ON "products" ("created_at", "id") WHERE ("is_published" = TRUE)""",
    # sort=price / -price and the min_price / max_price range
    """CREATE INDEX "products_published_price" ON "products" ("price", "id") WHERE ("is_published" = TRUE)""",
    # sort=name
    """CREATE INDEX "products_published_name" ON "products" ("name", "id") WHERE ("is_published" = TRUE)""",
    # featured=true
    """CREATE INDEX "products_featured_created_at" ON "products" ("created_at", "id") WHERE (("is_published" = TRUE) AND ("is_featured" = TRUE))""",
    # in_stock=true (and its count, index-only)
    """CREATE INDEX "products_in_stock_created_at" ON "products" ("created_at", "id") WHERE (("is_published" = TRUE) AND (("track_inventory" = FALSE) OR ("stock_quantity" > 0)))""",
    # in_stock=false
    """CREATE INDEX "products_sold_out_created_at" ON "products" ("created_at", "id") WHERE ((("is_published" = TRUE) AND ("track_inventory" = TRUE)) AND ("stock_quantity" <= 0))""",
    # the admins' low_stock=true filter
    """CREATE INDEX "products_low_stock_created_at" ON "products" ("created_at", "id") WHERE (("track_inventory" = TRUE) AND ("stock_quantity" <= "low_stock_threshold"))""",
    # q: substring search over name and description (ILIKE '%q%' on this expression)
    """CREATE INDEX "products_search_trgm" ON "products" USING GIN (((name)::text || ' '::text || description) gin_trgm_ops)""",
]

INDEXES = [
    "products_search_trgm",
    "products_low_stock_created_at",
    "products_sold_out_created_at",
    "products_in_stock_created_at",
    "products_featured_created_at",
    "products_published_name",
    "products_published_price",
    "products_published_created_at",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    # pg_trgm is a contrib extension: a server without it (the embedded pgserver) gets no
    # text-search index, and `q` works by a scan there. models/tables.py makes the same choice.
    trigram = bool(database.execute_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone())
    for statement in STATEMENTS:
        if trigram or "trgm" not in statement:
            migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for index in INDEXES:
        migrator.sql(f'DROP INDEX IF EXISTS "{index}"')
    migrator.sql("DROP EXTENSION IF EXISTS pg_trgm")
