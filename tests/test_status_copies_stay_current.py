"""GET /orders/{id}/status answers from the app's copies while the change fences say nothing
changed (web/orders/status_reader.py), and still reflects every committed change at once: a copy
is never served after a commit moved its fence, nor kept while a writer is in flight, and a token
revoked or meant for another user's order is refused as the query path refused it.

The announcements that also drop copies are switched off here (`no_announcements`): what these
tests prove must hold through the fences alone. The last tests show what the announcements add:
a step's announcement carries the row it committed, so the polls after it read no query, and an
announcement that a later write has overtaken is never served.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from models.accounts import service as accounts
from models.infra.db import db
from models.orders import states
from models.tables import Order, User
from tasks.dispatch import perform
from tests.order_factory import make_order
from tests.support import assert_error

API = "/api/v1"


@pytest.fixture
def no_announcements(client: Any) -> Iterator[Any]:
    """The app's StatusReader, its copies no longer dropped by announcements; reads counted from 0."""
    reader, waiters = client.app.state.status, client.app.state.waiters
    waiters.on_change, kept = (lambda order_id, announced: None), waiters.on_change
    reader.reads = 0
    yield reader
    waiters.on_change = kept


def _poll(client: Any, order: Order, headers: dict[str, str]) -> Any:
    return client.get(f"{API}/orders/{order.id}/status", headers=headers)


def _bump(order_id: int, status: str) -> Order:
    """An app write of the order, as every step makes one (lock, touch, commit)."""
    with db.atomic():
        order = Order.select().where(Order.id == order_id).for_update().get()
        states.touch(order, status=status)
    return order


def test_polls_read_postgresql_once_while_nothing_changes(client: Any, make_user: Any, no_announcements: Any) -> None:
    user, headers = make_user()
    order = make_order(user, status="reserved")
    answers = [_poll(client, order, headers) for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    etag = answers[0].headers["etag"]
    assert _poll(client, order, {**headers, "If-None-Match": etag}).status_code == 304
    assert no_announcements.reads == 1


def test_a_commit_elsewhere_shows_on_the_next_poll(client: Any, make_user: Any, no_announcements: Any) -> None:
    user, headers = make_user()
    order = make_order(user, status="reserved")
    first = _poll(client, order, headers)
    assert first.json()["version"] == 1
    perform(_bump, order.id, "confirmed")  # another process's step, as the worker runs one
    after = _poll(client, order, {**headers, "If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert (after.json()["status"], after.json()["version"]) == ("confirmed", 2)


def test_a_poll_while_a_writer_is_in_flight_keeps_no_copy(client: Any, make_user: Any, no_announcements: Any) -> None:
    """The poll reads the row as it was before the commit (right: not committed yet) after the
    writer moved the fence; kept under that fence, it would be served after the commit too."""
    user, headers = make_user()
    order = make_order(user, status="reserved")
    assert _poll(client, order, headers).json()["version"] == 1
    touched, release = threading.Event(), threading.Event()

    def step(order_id: int) -> Order:
        with db.atomic():
            locked = Order.select().where(Order.id == order_id).for_update().get()
            states.touch(locked, status="confirmed")
            touched.set()
            assert release.wait(30)
        return locked

    with ThreadPoolExecutor(1) as pool:
        writer = pool.submit(perform, step, order.id)
        assert touched.wait(30)
        during = _poll(client, order, headers)
        assert (during.json()["status"], during.json()["version"]) == ("reserved", 1)
        release.set()
        writer.result(timeout=30)
    after = _poll(client, order, headers)
    assert (after.json()["status"], after.json()["version"]) == ("confirmed", 2)


def test_a_revoked_token_is_refused_at_once(client: Any, make_user: Any, no_announcements: Any) -> None:
    user, headers = make_user()
    order = make_order(user, status="reserved")
    assert _poll(client, order, headers).status_code == 200
    accounts.logout(User.get_by_id(user.id))
    assert_error(_poll(client, order, headers), 401, "not_authenticated")


def test_another_users_token_gets_404_and_an_admins_the_status(
    client: Any, make_user: Any, no_announcements: Any
) -> None:
    owner, owner_headers = make_user()
    _, other_headers = make_user()
    _, admin_headers = make_user(admin=True)
    order = make_order(owner, status="reserved")
    for _ in range(2):  # the second time from the copies
        assert _poll(client, order, owner_headers).status_code == 200
        assert_error(_poll(client, order, other_headers), 404, "order_not_found")
        assert _poll(client, order, admin_headers).json()["id"] == order.id
    assert_error(client.get(f"{API}/orders/999999/status", headers=owner_headers), 404, "order_not_found")


def test_a_step_that_rolls_back_closes_its_fence(client: Any, make_user: Any, no_announcements: Any) -> None:
    """A writer that raises after opening the fence leaves no writer in flight behind it: polls go
    back to the copies at once, not after the in-flight mark expires."""
    from models.infra import fences
    from models.infra.redis_client import get_redis

    user, headers = make_user()
    order = make_order(user, status="reserved")

    def failing_inside(order_id: int) -> None:
        with db.atomic():
            locked = Order.select().where(Order.id == order_id).for_update().get()
            states.touch(locked, status="confirmed")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        perform(failing_inside, order.id)
    assert get_redis().get(states.fence_key(order.id) + fences.PENDING) is None
    answers = [_poll(client, order, headers).json() for _ in range(3)]
    assert {(a["status"], a["version"]) for a in answers} == {("reserved", 1)}
    assert no_announcements.reads == 1


def _heard(client: Any, order_id: int, version: int) -> None:
    from tests.support import wait_for

    copies = client.app.state.status.orders
    wait_for(lambda: order_id in copies and copies[order_id].row["version"] == version, what="the announcement")


def test_a_steps_announcement_answers_the_polls_after_it_without_a_query(client: Any, make_user: Any) -> None:
    reader = client.app.state.status
    user, headers = make_user()
    order = make_order(user, status="reserved")
    first = _poll(client, order, headers)  # the first poll reads PostgreSQL (no copy yet)
    reads = reader.reads
    perform(_bump, order.id, "confirmed")  # the worker's step: committed, fence closed, announced
    _heard(client, order.id, 2)
    after = _poll(client, order, {**headers, "If-None-Match": first.headers["etag"]})
    assert (after.status_code, after.json()["status"], after.json()["version"]) == (200, "confirmed", 2)
    assert after.json()["updated_at"] == _poll(client, order, headers).json()["updated_at"]
    assert reader.reads == reads  # answered from the announced row

    # The same row read back from PostgreSQL renders the same answer.
    reader.clear()
    assert _poll(client, order, headers).json() == after.json() and reader.reads == reads + 1


def test_an_announcement_overtaken_by_a_later_write_is_not_served(client: Any, make_user: Any) -> None:
    """Announcements can arrive late (a slow writer's, after a faster later one's): the copy it
    leaves carries its own fence counter, and the fence has moved on since."""
    from models import events

    reader = client.app.state.status
    user, headers = make_user()
    order = make_order(user, status="reserved")
    _poll(client, order, headers)
    with events.collecting() as emitted:  # a step whose announcement is held back
        _bump(order.id, "confirmed")
    states.settle([states.fence_key(order.id)], [])  # its fence closed, nothing announced yet
    [late] = [m.announcement for m in emitted if isinstance(m, events.OrderChanged)]
    perform(_bump, order.id, "shipped")  # a later write, announced at once
    _heard(client, order.id, 3)
    reader.changed(order.id, late.split(" ", 1)[1])  # the late announcement, of version 2, arrives
    answer = _poll(client, order, headers).json()
    assert (answer["status"], answer["version"]) == ("shipped", 3)


def test_a_step_inside_a_callers_transaction_announces_no_row(make_user: Any) -> None:
    """Its commit is the caller's: an id alone goes out, so web processes drop their copies."""
    from models import events
    from models.infra.redis_client import get_redis
    from tasks.dispatch import handle

    user, _ = make_user()
    order = make_order(user, status="reserved")
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(states.STATUS_CHANNEL)
    try:
        with db.atomic():
            with events.collecting() as emitted:
                _bump(order.id, "confirmed")
            handle(emitted)
        heard = [pubsub.get_message(timeout=1) for _ in range(3)]  # the subscription's reply comes first
        states.settle([states.fence_key(order.id)], [])  # the caller's part, once it committed
    finally:
        pubsub.close()
    assert [m["data"] for m in heard if m] == [str(order.id)]
    announced = [m.announcement for m in emitted if isinstance(m, events.OrderChanged)]
    assert announced[0].startswith(f"{order.id} ")  # outside a caller's transaction it would go out


def test_an_order_polled_before_it_existed_shows_once_placed(
    client: Any, make_user: Any, no_announcements: Any
) -> None:
    """A poll of an id not yet used keeps a copy of "no such order"; placing the order moves its
    fence, as every write does, so the next poll reads it rather than that copy."""
    from models.cart.store import cart_key
    from models.infra.redis_client import get_redis
    from models.orders.checkout import place_order
    from models.tables import Product
    from tests.support import checkout_body

    user, headers = make_user()
    before = make_order(user, status="reserved")
    item = Product.create(sku="SKU-NEW", name="Tee", slug="tee-new", price=9000, stock_quantity=5, tags=[], images=[])
    get_redis().hset(cart_key("session-new"), mapping={str(item.id): 1})
    upcoming = Order.get_by_id(before.id)  # ids are a sequence: the next order takes the next one
    assert_error(client.get(f"{API}/orders/{upcoming.id + 1}/status", headers=headers), 404, "order_not_found")
    placed = perform(place_order, User.get_by_id(user.id), "session-new", checkout_body(), None)
    assert placed.order.id == upcoming.id + 1
    answer = _poll(client, placed.order, headers)
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
