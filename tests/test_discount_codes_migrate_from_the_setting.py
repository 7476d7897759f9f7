"""The retired DISCOUNT_CODES setting's codes become discounts once, when migration 010 runs (its
default, WELCOME10=10%, when it was never set), and the setting is read nowhere else."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from models.infra.settings import load_settings
from models.schema import router
from tests.test_migrations import scratch  # noqa: F401  (the fixture: two scratch databases)

ROOT = Path(__file__).resolve().parent.parent
migration = importlib.import_module("models.migrations.010_roadmap")


@pytest.fixture
def discount_codes() -> Iterator[Any]:
    saved = os.environ.get("DISCOUNT_CODES")

    def use(value: str | None) -> None:
        if value is None:
            os.environ.pop("DISCOUNT_CODES", None)
        else:
            os.environ["DISCOUNT_CODES"] = value

    yield use
    use(saved)


def _discounts(url: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT code, kind, value, min_subtotal, usage_limit, per_customer_limit, used_count, "
                "active FROM discounts ORDER BY code"
            )
            return cursor.fetchall()
    finally:
        conn.close()


def test_the_settings_codes_become_discounts(scratch: tuple[str, str], discount_codes: Any) -> None:  # noqa: F811
    from models.infra import db as dbmod

    first, second = scratch
    discount_codes("welcome10=10%, SAVE5000=5000,broken,HALF=150%,,NEG=-3")
    database = dbmod.init_db(first)
    router(database).run()
    database.close_all()
    assert _discounts(first) == [
        ("SAVE5000", "fixed", 5000, 0, None, None, 0, True),
        ("WELCOME10", "percent", 10, 0, None, None, 0, True),
    ]

    discount_codes(None)  # never set: the setting's old default keeps working
    database = dbmod.init_db(second)
    router(database).run()
    database.close_all()
    assert _discounts(second) == [("WELCOME10", "percent", 10, 0, None, None, 0, True)]


def test_the_setting_is_retired() -> None:
    assert not hasattr(load_settings(), "discount_codes")
    readers = [
        path.relative_to(ROOT)
        for package in ("models", "web", "tasks")
        for path in (ROOT / package).rglob("*.py")
        if "DISCOUNT_CODES" in path.read_text()
    ]
    assert readers == [Path("models/migrations/010_roadmap.py")]
    assert migration.retired_codes("A=5%,B=0,C=x") == [("A", "percent", 5)]
