"""A write whose outcome nobody reads (an order's update under its lock, an event's insert) goes to
PostgreSQL with its transaction's next statement or with its COMMIT (`ShopDatabase.write_later` in
models/infra/db.py), not in a round trip of its own. It must still act as if it had run in its
place: the next statement sees it; a block that raises keeps none of it, and the next transaction
does not send it; a write that fails fails the commit and leaves nothing of its transaction; a
savepoint rolled back takes the writes made inside it; text with a `%` arrives as written; and a
pipeline step sends its order update, its event and its COMMIT in one round trip."""

from __future__ import annotations

import logging
from typing import Any

import psycopg2.extensions
import pytest
from peewee import IntegrityError

from models import events
from models.infra.db import db
from models.orders.states import lock, transition
from models.tables import Order, OrderEvent, SeedRun
from tests.order_factory import make_order
from tests.support import sql_sent

IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE
ADD = "INSERT INTO seed_runs (name, applied_at) VALUES (%s, now())"


def names() -> list[str]:
    return [row.name for row in SeedRun.select().order_by(SeedRun.name)]


def sent(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The SQL of each round trip, prepared statements read as their own SQL."""
    return sql_sent(caplog.records)


def test_the_next_statement_sees_the_write() -> None:
    with db.obj.connection_context():
        with db.obj.atomic():
            db.obj.write_later(ADD, ["Tops"])
            assert names() == ["Tops"]
        assert names() == ["Tops"]


def test_writes_go_with_the_commit(caplog: pytest.LogCaptureFixture) -> None:
    with db.obj.connection_context():
        with caplog.at_level(logging.DEBUG, logger="peewee"), db.obj.atomic():
            SeedRun.create(name="Bags")
            db.obj.write_later(ADD, ["Shoes"])
            db.obj.write_later(ADD, ["Tops"])
        messages = sent(caplog)
        assert len(messages) == 2, messages
        assert messages[0].startswith("BEGIN; INSERT INTO"), messages
        assert "'Shoes'" in messages[1] and "'Tops'" in messages[1] and messages[1].endswith("; COMMIT")
        assert names() == ["Bags", "Shoes", "Tops"]
        assert db.obj.connection().get_transaction_status() == IDLE


def test_a_transaction_of_writes_alone_is_one_round_trip(caplog: pytest.LogCaptureFixture) -> None:
    with db.obj.connection_context():
        with caplog.at_level(logging.DEBUG, logger="peewee"), db.obj.atomic():
            db.obj.write_later(ADD, ["Tops"])
        messages = sent(caplog)
        assert len(messages) == 1 and messages[0].startswith("BEGIN; INSERT INTO"), messages
        assert names() == ["Tops"]


def test_percent_signs_arrive_as_written() -> None:
    written = ["50% off %s %%", "100%(x)s"]
    with db.obj.connection_context():
        with db.obj.atomic():
            db.obj.write_later(ADD, [written[0]])
            # The next statement has parameters of its own: the write goes with it, formatted with them.
            assert [r.name for r in SeedRun.select().where(SeedRun.name.contains("% off"))] == [written[0]]
            db.obj.write_later(ADD, [written[1]])  # and this one with the COMMIT, which has none
        assert names() == sorted(written)


def test_a_block_that_raises_sends_none_of_its_writes(caplog: pytest.LogCaptureFixture) -> None:
    with db.obj.connection_context():
        with pytest.raises(RuntimeError), db.obj.atomic():
            db.obj.write_later(ADD, ["Tops"])
            raise RuntimeError("undo")
        assert db.obj.connection().get_transaction_status() == IDLE
        with caplog.at_level(logging.DEBUG, logger="peewee"), db.obj.atomic():
            SeedRun.create(name="Shoes")
        assert not any("Tops" in message for message in sent(caplog))
        assert names() == ["Shoes"]


def test_a_failing_write_fails_the_commit_and_keeps_nothing() -> None:
    with db.obj.connection_context():
        SeedRun.create(name="Tops")
        with pytest.raises(IntegrityError, match="duplicate key"), db.obj.atomic():
            SeedRun.create(name="Shoes")
            db.obj.write_later(ADD, ["Tops"])  # fails only when it reaches PostgreSQL, with the COMMIT
        assert db.obj.connection().get_transaction_status() == IDLE
        assert names() == ["Tops"]
        with db.obj.atomic():
            SeedRun.create(name="Bags")
        assert names() == ["Bags", "Tops"]


def test_a_rolled_back_savepoint_takes_its_writes() -> None:
    with db.obj.connection_context():
        with db.obj.atomic():
            db.obj.write_later(ADD, ["Bags"])
            with pytest.raises(RuntimeError), db.obj.atomic():  # SAVEPOINT carries "Bags"
                db.obj.write_later(ADD, ["Shoes"])
                raise RuntimeError("undo the savepoint only")  # ROLLBACK TO SAVEPOINT carries "Shoes"
            db.obj.write_later(ADD, ["Tops"])
        assert names() == ["Bags", "Tops"]


def test_outside_a_transaction_a_write_runs_at_once() -> None:
    with db.obj.connection_context():
        db.obj.write_later(ADD, ["Tops"])
        assert db.obj.connection().get_transaction_status() == IDLE
    with db.obj.connection_context():
        assert names() == ["Tops"]


def test_a_step_sends_its_order_and_event_with_the_commit(make_user: Any, caplog: pytest.LogCaptureFixture) -> None:
    with db.obj.connection_context():
        order = make_order(make_user()[0], status="reserved", payment_status="pending")
        with caplog.at_level(logging.DEBUG, logger="peewee"), events.collecting(), db.obj.atomic():
            transition(lock(order.id), "confirmed", "payment_captured", {"note": "100% paid"}, "task-1")
        messages = sent(caplog)
        assert len(messages) == 2, messages
        assert messages[0].startswith("BEGIN; SELECT") and "FOR UPDATE" in messages[0], messages
        assert messages[1].startswith('UPDATE "orders" SET') and 'INSERT INTO "order_events"' in messages[1]
        assert messages[1].endswith("; COMMIT"), messages
        saved = Order.get_by_id(order.id)
        event = OrderEvent.get(OrderEvent.order == order.id, OrderEvent.type == "payment_captured")
    assert (saved.status, saved.version) == ("confirmed", order.version + 1)
    assert (event.detail, event.task_id, event.to_status) == ({"note": "100% paid"}, "task-1", "confirmed")
