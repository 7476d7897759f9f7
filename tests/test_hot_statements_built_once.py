"""The order pipeline's hottest statements (lock an order, save what changed, append an event, read
an order's page) are built once per process instead of by peewee on every call
(models/infra/db.py). They must still do exactly what peewee's would: an order saved by touch()
writes only the columns that changed, so a column nobody touched keeps what another writer put
there; an event recorded is in the timeline once the transaction commits, and one inserted gets
its id; the cached reads take their parameters in order, and make the instances peewee's `raw`
would; the order page, one statement with its lines and timeline aggregated, reads what three
queries would."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from playhouse.shortcuts import model_to_dict

from models import events
from models.infra.db import db, insert, raw_rows, save_changed, select_rows
from models.orders import queries
from models.orders.payment_steps import _READ_WITH_PAYER
from models.orders.states import lock, record, touch
from models.tables import Order, OrderEvent, OrderItem
from tests.order_factory import make_order


@pytest.fixture
def order(make_user: Any) -> Order:
    with db.obj.connection_context():
        return make_order(make_user()[0], status="reserved", payment_status="pending")


def test_touch_writes_only_the_columns_it_changed(order: Order) -> None:
    with events.collecting(), db.obj.connection_context(), db.obj.atomic():
        locked = lock(order.id)
        # A column the step does not change, written meanwhile by a statement of its own (peewee's
        # save() would write the whole row back, undoing it).
        db.obj.execute_sql("UPDATE orders SET tracking_number = 'set elsewhere' WHERE id = %s", (order.id,))
        touch(locked, payment_status="authorized", payment_details={"k": ["v", 1]})
    with db.obj.connection_context():
        saved = Order.get_by_id(order.id)
    assert saved.tracking_number == "set elsewhere"
    assert saved.payment_status == "authorized"
    assert saved.payment_details == {"k": ["v", 1]}  # a JSON column goes through its field's conversion
    assert saved.version == order.version + 1
    assert saved.updated_at > order.updated_at


def test_a_field_set_before_touch_is_saved_too(order: Order) -> None:
    with events.collecting(), db.obj.connection_context(), db.obj.atomic():
        locked = lock(order.id)
        locked.payment_flag = "set by the caller"
        touch(locked, status="confirmed")
    with db.obj.connection_context():
        saved = Order.get_by_id(order.id)
    assert (saved.status, saved.payment_flag) == ("confirmed", "set by the caller")


def test_nothing_changed_writes_nothing(order: Order) -> None:
    with db.obj.connection_context(), db.obj.atomic():
        assert save_changed(lock(order.id)) == 0


def test_record_appends_the_event_and_insert_returns_an_id(order: Order) -> None:
    with db.obj.connection_context(), db.obj.atomic():
        record(lock(order.id), "note", {"a": 1}, "task-1", "reserved", "confirmed")  # sent with the commit
        second = insert(OrderEvent(order=order.id, type="other"))
    assert second.id
    with db.obj.connection_context():
        row = OrderEvent.get(OrderEvent.order == order.id, OrderEvent.type == "note")
    assert row.id < second.id  # the recorded event went first, with the next statement
    assert (row.order_id, row.type, row.detail, row.task_id) == (order.id, "note", {"a": 1}, "task-1")
    assert (row.from_status, row.to_status) == ("reserved", "confirmed")


def test_the_cached_order_page_reads_only_its_owners_order(order: Order, make_user: Any) -> None:
    stranger, _ = make_user()
    with db.obj.connection_context():
        assert queries.get(order.id, order.user_id).order.id == order.id
        assert queries.get(order.id, None).order.id == order.id  # an admin's read
        with pytest.raises(Exception, match="No such order"):
            queries.get(order.id, stranger.id)
        with pytest.raises(Exception, match="No such order"):
            queries.get(order.id, None, guest=True)  # a member's order is not a guest's


def test_a_cached_read_given_the_wrong_number_of_parameters_fails_loudly() -> None:
    with db.obj.connection_context():
        select_rows(Order, "test:two", lambda: Order.select().where(Order.id == 0, Order.user == 0), 1, 2)
        with pytest.raises(TypeError, match="takes 2 parameters, given 1"):
            select_rows(Order, "test:two", lambda: Order.select().where(Order.id == 0, Order.user == 0), 1)


def test_a_cached_read_makes_the_instances_peewees_raw_makes(order: Order, make_user: Any) -> None:
    """raw_rows matches the columns to the fields once per statement, then reuses that: the second
    read, of another order, must fill every field as peewee would, and carry the columns that are
    no field (the payer's) as attributes, as peewee's `raw` does."""
    with db.obj.connection_context():
        other = make_order(make_user()[0], status="pending", payment_status="unpaid")
        for each in (order, other):
            mine, peewees = raw_rows(Order, _READ_WITH_PAYER, each.id), list(Order.raw(_READ_WITH_PAYER, each.id))
            assert len(mine) == len(peewees) == 1
            assert mine[0].__data__ == peewees[0].__data__
            assert mine[0].__dict__ == peewees[0].__dict__  # payer_email, item_lines, and peewee's own state
            assert mine[0].id == each.id and not mine[0].dirty_fields
        assert raw_rows(Order, _READ_WITH_PAYER, 0) == []


def test_the_order_page_is_one_statement_that_reads_what_three_would(
    order: Order, caplog: pytest.LogCaptureFixture
) -> None:
    with db.obj.connection_context(), db.obj.atomic():
        record(lock(order.id), "payment_submitted", {"proof": {"token": "tok_ok"}, "amount": 12000}, "task-1")
        record(lock(order.id), "note", {}, None, "reserved", "confirmed")
    with db.obj.connection_context():
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            view = queries.get(order.id, order.user_id)
        sent = [r.getMessage() for r in caplog.records if r.name == "peewee"]
        lines = list(OrderItem.select().where(OrderItem.order == order.id).order_by(OrderItem.id))
        timeline = list(OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.at, OrderEvent.id))

    assert len(sent) == 1, sent
    assert lines and [model_to_dict(i, recurse=False) for i in view.items] == [
        model_to_dict(i, recurse=False) for i in lines
    ]
    assert len(timeline) >= 2 and [model_to_dict(e, recurse=False) for e in view.events] == [
        model_to_dict(e, recurse=False) for e in timeline
    ]
    assert [e.at.isoformat() for e in view.events] == [e.at.isoformat() for e in timeline]  # as rendered
