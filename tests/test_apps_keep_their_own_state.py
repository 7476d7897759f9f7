"""What a web app keeps in memory is its own: two apps in one process share no catalogue cache, no
long-poll waiters and no request ids (each lives on its app.state, made by create_app), and
importing web.app connects to nothing and configures nothing (the lifespan does, when it serves)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from models.orders.states import announce
from models.tables import Order, Product
from tests.support import wait_for
from web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


def _listening(app: Any) -> None:
    for subscription in app.state.subscriptions:
        wait_for(subscription.subscribed.is_set, what=f"the app's {subscription.channel} listener")


def test_two_apps_in_one_process_share_no_cache_waiters_or_request_ids(make_user: Any) -> None:
    user, headers = make_user()
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    order = Order.create(
        order_number="ORD-STATE-1",
        user=user.id,
        currency="KRW",
        subtotal=20000,
        total=20000,
        shipping_address={},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
    )
    first, second = create_app(), create_app()
    for name in ("catalog", "waiters", "request_ids"):
        assert getattr(first.state, name) is not getattr(second.state, name), name
    page, key = f"/api/v1/products/{item.id}", f"id:{item.id}"
    # The product was written before either app listened: no announcement can clear what follows.
    with TestClient(first) as one, TestClient(second) as two:
        _listening(first)
        _listening(second)

        # A page read through one app is cached by that app only; clearing one leaves the other.
        assert one.get(page).status_code == 200
        assert first.state.catalog.get(key) is not None and second.state.catalog.get(key) is None
        assert two.get(page).status_code == 200
        first.state.catalog.clear()
        assert first.state.catalog.get(key) is None and second.state.catalog.get(key) is not None

        # A long poll held by one app waits on that app's waiters only, and its own listener wakes it.
        status = f"/api/v1/orders/{order.id}/status"
        etag = one.get(status, headers=headers).headers["etag"]
        answers: list[int] = []
        poll = threading.Thread(
            target=lambda: answers.append(
                one.get(status, params={"wait": 20}, headers={**headers, "If-None-Match": etag}).status_code
            )
        )
        poll.start()
        try:
            wait_for(lambda: first.state.waiters.waiting() == 1, what="the long poll to wait on the first app")
            assert second.state.waiters.waiting() == 0
            Order.update(version=Order.version + 1).where(Order.id == order.id).execute()
            announce(order.id)
        finally:
            poll.join(30)
        assert answers == [200]  # woken by the announcement, not by the 20 s deadline
        assert first.state.waiters.waiting() == 0

        # Request ids: each app its own prefix.
        first_id, second_id = (c.get("/healthz").headers["x-request-id"] for c in (one, two))
        assert first_id.startswith(first.state.request_ids.prefix)
        assert second_id.startswith(second.state.request_ids.prefix)
        assert first.state.request_ids.prefix != second.state.request_ids.prefix


class _Listener:
    """A TCP port that counts the connections made to it (standing in for PostgreSQL and Redis)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.socket.close()


def test_importing_the_web_app_connects_to_nothing() -> None:
    database, redis = _Listener(), _Listener()
    script = (
        "import logging\n"
        "import web.app\n"
        "from models.infra.db import db\n"
        "assert web.app.app.state.catalog is not None\n"
        "web.app.create_app()\n"
        "assert db.obj is None, 'the database proxy was bound at import'\n"
        "assert logging.getLogger().handlers == [], 'logging was configured at import'\n"
        "print('imported')\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://shop@127.0.0.1:{database.port}/shop",
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        database.close()
        redis.close()
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr
    assert (database.accepted, redis.accepted) == (0, 0)
