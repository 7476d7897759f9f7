"""The pipeline's hottest statements are prepared once per connection and run by EXECUTE after that
(models/infra/db.py `prepared`), so PostgreSQL plans each of them once per connection instead of
at every run. What must hold: the first run prepares the statement in the same round trip and the
next runs send only the EXECUTE; the results are the plain statement's (placeholders by position
or by name, a `%` in the text or in the values); a round trip that fails after its PREPARE ran,
or before, leaves the connection able to run the statement again; an id too large for an
integer column finds nothing, as the plain statement did, instead of failing; a migration that adds a column
to orders does not break the prepared reads of orders; and with DB_PREPARED_STATEMENTS off (the
default behind a transaction pooler, where each transaction may get another server connection)
nothing is prepared."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from peewee import IntegrityError

from models.infra.db import ShopDatabase, db, make_database, prepared, prepared_names
from models.infra.settings import load_settings
from models.orders.payment_steps import with_payer
from models.orders.states import lock
from tests.order_factory import make_order

SUM = prepared("SELECT %s::int + %s::int, '100%%'")
NAMED = prepared("SELECT %(a)s::int * 2 + %(b)s::int, %(a)s::int")
ECHO = prepared("SELECT %s::text AS echoed")
DIVIDE = prepared("SELECT 10 / %s::int")


def name_of(sql: str) -> str:
    return next(name for name, text in prepared_names().items() if text == sql)


@pytest.fixture
def database() -> Iterator[ShopDatabase]:
    """A pool of one connection of its own, so that what it has prepared is known."""
    database = make_database(os.environ["DATABASE_URL"], max_connections=1)
    database.prepare_statements = True
    yield database
    database.close_all()


def prepared_on(database: ShopDatabase) -> set[str]:
    return {name for (name,) in database.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()}


def sent(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(record.msg[0]) for record in caplog.records if record.name == "peewee"]


def test_the_first_run_prepares_and_the_next_ones_execute(
    database: ShopDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    name = name_of(SUM)
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        first = database.execute_sql(SUM, (1, 2)).fetchone()
        second = database.execute_sql(SUM, (3, 4)).fetchone()
    assert sent(caplog) == [
        f"PREPARE {name} AS SELECT $1::int + $2::int, '100%%'; EXECUTE {name}(%s, %s)",
        f"EXECUTE {name}(%s, %s)",
    ]
    assert (first, second) == ((3, "100%"), (7, "100%"))
    assert name in prepared_on(database)


def test_named_placeholders_take_one_parameter_each(database: ShopDatabase) -> None:
    assert database.execute_sql(NAMED, {"a": 5, "b": 1}).fetchone() == (11, 5)
    assert database.execute_sql(NAMED, {"a": 2, "b": 0}).fetchone() == (4, 2)


def test_values_arrive_as_written(database: ShopDatabase) -> None:
    for value in ("50%", "%s", "%%", "%(a)s", "it's", "$1"):
        assert database.execute_sql(ECHO, (value,)).fetchone() == (value,)
    cursor = database.execute_sql(ECHO, ("named",))
    assert cursor.description[0].name == "echoed"  # what peewee maps a row's columns by


def test_a_failure_after_the_prepare_leaves_it_usable(database: ShopDatabase) -> None:
    with pytest.raises(Exception, match="division by zero"):
        database.execute_sql(DIVIDE, (0,))  # the PREPARE ran (it outlives the error), the EXECUTE failed
    assert name_of(DIVIDE) in prepared_on(database)
    assert database.execute_sql(DIVIDE, (2,)).fetchone() == (5,)  # not "already exists"
    assert database.execute_sql(DIVIDE, (5,)).fetchone() == (2,)


def test_a_failure_before_the_prepare_leaves_it_usable(database: ShopDatabase) -> None:
    echo = prepared("SELECT %s::text AS after_a_failure")
    database.execute_sql("CREATE TEMP TABLE taken (x int PRIMARY KEY)")
    database.execute_sql("INSERT INTO taken VALUES (1)")
    with pytest.raises(IntegrityError), database.atomic():
        database.write_later("INSERT INTO taken VALUES (%s)", [1])  # fails first: the PREPARE never runs
        database.execute_sql(echo, ("never",))
    assert name_of(echo) not in prepared_on(database)
    assert database.execute_sql(echo, ("b",)).fetchone() == ("b",)  # not "does not exist"
    assert database.execute_sql(echo, ("c",)).fetchone() == ("c",)


def test_a_column_added_by_a_migration_keeps_the_prepared_reads_of_orders(make_user: Any) -> None:
    assert db.obj.prepare_statements
    with db.obj.connection_context():
        order = make_order(make_user()[0], status="reserved", payment_status="pending")
        for _ in range(2):
            assert with_payer(order.id) is not None
            with db.obj.atomic():
                lock(order.id)
        db.obj.execute_sql("ALTER TABLE orders ADD COLUMN added_by_a_migration text")
        try:
            read = with_payer(order.id)
            with db.obj.atomic():
                locked = lock(order.id)
        finally:
            db.obj.execute_sql("ALTER TABLE orders DROP COLUMN added_by_a_migration")
    assert read is not None and read.id == locked.id == order.id


def test_nothing_is_prepared_when_the_setting_is_off(caplog: pytest.LogCaptureFixture) -> None:
    database = make_database(os.environ["DATABASE_URL"], max_connections=1)
    database.prepare_statements = False
    try:
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            assert database.execute_sql(SUM, (1, 2)).fetchone() == (3, "100%")
            assert database.execute_sql(SUM, (1, 3)).fetchone() == (4, "100%")
        assert sent(caplog) == [SUM, SUM]
        assert prepared_on(database) == set()
    finally:
        database.close_all()


@pytest.mark.parametrize(
    ("direct", "setting", "expected"),
    [
        (None, None, True),  # PostgreSQL itself
        ("same", None, True),
        ("postgresql://postgres@127.0.0.1:5432/elsewhere", None, False),  # a pooler in between
        ("postgresql://postgres@127.0.0.1:5432/elsewhere", "on", True),
        (None, "off", False),
    ],
)
def test_the_setting_is_off_by_default_behind_a_pooler(
    monkeypatch: pytest.MonkeyPatch, direct: str | None, setting: str | None, expected: bool
) -> None:
    for name, value in (("DATABASE_DIRECT_URL", direct), ("DB_PREPARED_STATEMENTS", setting)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, os.environ["DATABASE_URL"] if value == "same" else value)
    assert load_settings().db_prepared_statements is expected


def test_an_id_larger_than_an_integer_finds_nothing_as_before(database: ShopDatabase) -> None:
    """A prepared `id = $1` takes the integer type of its column, where the plain statement compares
    a bigint: a value out of an integer's range runs plain, and finds no row instead of failing."""
    lookup = prepared("SELECT id FROM orders WHERE id = %s")
    largest = [database.execute_sql(lookup, (2**63 - 1,)).fetchall() for _ in range(2)]
    assert largest == [[], []]
    assert database.execute_sql(lookup, (-(2**31) - 1,)).fetchall() == []
    assert database.execute_sql(prepared("SELECT id FROM orders WHERE id = ANY(%s)"), ([1, 2**40],)).fetchall() == []
    assert name_of(lookup) not in prepared_on(database)
    database.execute_sql(lookup, (7,))
    assert name_of(lookup) in prepared_on(database)
