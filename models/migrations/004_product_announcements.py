"""004: PostgreSQL announces every committed change to products (NOTIFY products_changed), so that
caches in front of the catalogue (web/catalog/cache.py) drop what changed, whoever changed it: a
checkout's reservation in a worker, an administrator, or SQL typed by hand.

Payloads (models.catalog.PRODUCTS_CHANNEL): 'stock:<id>' when an UPDATE changed only a product's
stock (and updated_at), '*' for anything else (an administrator's edit, inserts, deletes, TRUNCATE).
NOTIFY is delivered at commit, and only if the transaction commits.
"""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    """CREATE OR REPLACE FUNCTION announce_product_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_LEVEL = 'ROW' AND (to_jsonb(NEW) - 'stock_quantity' - 'updated_at')
                              = (to_jsonb(OLD) - 'stock_quantity' - 'updated_at') THEN
        PERFORM pg_notify('products_changed', 'stock:' || NEW.id);
      ELSE
        PERFORM pg_notify('products_changed', '*');
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER products_announce_update AFTER UPDATE ON products
       FOR EACH ROW EXECUTE FUNCTION announce_product_change()""",
    """CREATE TRIGGER products_announce_other AFTER INSERT OR DELETE OR TRUNCATE ON products
       FOR EACH STATEMENT EXECUTE FUNCTION announce_product_change()""",
]


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    for statement in STATEMENTS:
        migrator.sql(statement)


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql("DROP TRIGGER IF EXISTS products_announce_update ON products")
    migrator.sql("DROP TRIGGER IF EXISTS products_announce_other ON products")
    migrator.sql("DROP FUNCTION IF EXISTS announce_product_change()")
