"""GET /orders/{id}/status answers from the app's copies while the change fences say nothing
changed (web/orders/status_reader.py), and still reflects every committed change at once: a copy
is never served after a commit moved its fence, nor kept while a writer is in flight, and a token
revoked or meant for another user's order is refused as the query path refused it.

The announcements that also drop copies are switched off here (`no_announcements`): what these
tests prove must hold through the fences alone.
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
    waiters.on_change, kept = (lambda order_id: None), waiters.on_change
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
