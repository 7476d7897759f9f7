"""010 (second part): drop two dashboard indexes of 010_roadmap that the order desk's indexes
(migration 008) made redundant.

orders_created_at_status and orders_waiting_status_updated_at gave the planner other plans for the
order desk's status filter, and cost every order write; the dashboard now counts orders by status
through orders_created_at and its waiting orders through orders_status_created_at. A separate file,
because 010_roadmap has been merged and may have run: a migration never changes once shipped.
"""

from __future__ import annotations

from typing import Any


def migrate(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('DROP INDEX IF EXISTS "orders_waiting_status_updated_at"')
    migrator.sql('DROP INDEX IF EXISTS "orders_created_at_status"')


def rollback(migrator: Any, database: Any, *, fake: bool = False) -> None:
    migrator.sql('CREATE INDEX "orders_created_at_status" ON "orders" ("created_at", "status")')
    migrator.sql(
        """CREATE INDEX "orders_waiting_status_updated_at" ON "orders" ("status", "updated_at") WHERE ("status" IN ('pending', 'reserved', 'confirmed', 'shipped'))"""
    )
