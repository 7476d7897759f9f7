"""A transaction's BEGIN goes to PostgreSQL with its first statement, not in a round trip of its own
(models/infra/db.py ShopDatabase). It must still be a transaction: what a block wrote is gone
when the block raises, a savepoint as the first statement still rolls back alone, and a block that
ran no statement leaves the connection idle, sending neither BEGIN nor COMMIT."""

from __future__ import annotations

import logging

import psycopg2.extensions
import pytest

from models.infra.db import db
from models.tables import SeedRun

IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE


def names() -> list[str]:
    return [row.name for row in SeedRun.select().order_by(SeedRun.name)]


def test_begin_travels_with_the_first_statement(caplog: pytest.LogCaptureFixture) -> None:
    with db.obj.connection_context():
        with caplog.at_level(logging.DEBUG, logger="peewee"), db.obj.atomic():
            SeedRun.create(name="Tops")
            SeedRun.create(name="Shoes")
        sent = [record.getMessage() for record in caplog.records if record.name == "peewee"]
        assert sent[0].startswith("('BEGIN; INSERT INTO"), sent
        assert not any(message.startswith("('BEGIN',") for message in sent)
        assert not sent[1].startswith("('BEGIN"), sent
        assert names() == ["Shoes", "Tops"]


def test_a_block_that_raises_keeps_nothing_it_wrote() -> None:
    with db.obj.connection_context():
        with pytest.raises(RuntimeError), db.obj.atomic():
            SeedRun.create(name="Tops")
            raise RuntimeError("undo")
        assert names() == []  # in autocommit mode, without a BEGIN, the row would have stayed
        assert db.obj.connection().get_transaction_status() == IDLE


def test_a_failing_first_statement_rolls_back_and_the_connection_goes_on() -> None:
    with db.obj.connection_context():
        SeedRun.create(name="Tops")
        with pytest.raises(Exception, match="duplicate key"), db.obj.atomic():
            SeedRun.create(name="Tops")
        assert db.obj.connection().get_transaction_status() == IDLE
        with db.obj.atomic():
            SeedRun.create(name="Shoes")
        assert names() == ["Shoes", "Tops"]


def test_a_savepoint_first_rolls_back_alone() -> None:
    with db.obj.connection_context():
        with db.obj.atomic():
            with pytest.raises(RuntimeError), db.obj.atomic():  # the transaction's first statement: SAVEPOINT
                SeedRun.create(name="Tops")
                raise RuntimeError("undo the savepoint only")
            SeedRun.create(name="Shoes")
        assert names() == ["Shoes"]


def test_a_block_without_statements_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with db.obj.connection_context():
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            with db.obj.atomic():
                pass
            with pytest.raises(RuntimeError), db.obj.atomic():
                raise RuntimeError("before any statement")
        assert [r for r in caplog.records if r.name == "peewee"] == []
        assert db.obj.connection().get_transaction_status() == IDLE
        # The next statement runs on its own (no BEGIN owed from the blocks above).
        SeedRun.create(name="Tops")
        assert db.obj.connection().get_transaction_status() == IDLE
