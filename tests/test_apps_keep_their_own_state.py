"""What a web app keeps in memory is its own: two apps in one process share no catalogue cache, no
long-poll waiters and no request ids (each lives on its app.state, made by create_app)."""

from __future__ import annotations

import threading
from typing import Any

from starlette.testclient import TestClient

from models.orders.states import announce
from models.tables import Order, Product
from tests.support import wait_for
from web.app import create_app


def _listening(app: Any) -> None:
    for subscription in app.state.subscriptions:
        wait_for(subscription.subscribed.is_set, what=f"the app's {subscription.channel} listener")


def test_two_apps_in_one_process_share_no_cache_waiters_or_request_ids(make_user: Any) -> None:
    user, headers = make_user()
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    order = Order.create(order_number="ORD-STATE-1", user=user.id, currency="KRW", subtotal=20000, total=20000,
                         shipping_address={}, shipping_method="standard", payment_method="dummy",
                         payment_gateway="dummy")
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
        poll = threading.Thread(target=lambda: answers.append(
            one.get(status, params={"wait": 20}, headers={**headers, "If-None-Match": etag}).status_code))
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
