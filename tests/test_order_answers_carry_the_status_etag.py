"""POST /orders and POST /orders/{id}/pay answer 202 with the order and, in `ETag`, the ETag that
GET /orders/{id}/status sends for the same version: a storefront long-polls /status with it at
once (If-None-Match and ?wait=), with no plain poll first to learn it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from models import events
from models.orders import payment_steps, pipeline
from models.orders.states import announce
from models.tables import Product
from tests.support import WorkerProcess, checkout_body, register_shopper, wait_for

API = "/api/v1"


@pytest.fixture
def no_worker(_worker_process: WorkerProcess) -> None:
    """The pipeline's steps run here, one by one: a worker left running by an earlier test would
    move the order on between a 202 and the poll that checks its ETag (a later test that needs
    the worker starts it again)."""
    _worker_process.stop()


def status(client: Any, order_id: int, headers: dict[str, str], etag: str, **params: str) -> Any:
    return client.get(f"{API}/orders/{order_id}/status", params=params, headers={**headers, "If-None-Match": etag})


def test_each_202_carries_the_etag_of_the_status_it_shows(client: Any, no_worker: None) -> None:
    headers = register_shopper(client, "etag@example.com")
    item = Product.create(sku="SKU-E", name="Tee", slug="tee-e", price=9000, stock_quantity=3, tags=[], images=[])
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "session-etag"}
    )

    placed = client.post(f"{API}/orders", json=checkout_body(), headers={**headers, "X-Session-ID": "session-etag"})
    assert placed.status_code == 202
    order_id, placed_tag = placed.json()["id"], placed.headers["etag"]
    unchanged = status(client, order_id, headers, placed_tag)
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == placed_tag

    with events.collecting():  # the worker's steps, run here
        pipeline.reserve_stock(order_id)
        payment_steps.authorize(order_id)
    moved = status(client, order_id, headers, placed_tag)
    assert moved.status_code == 200 and moved.json()["status"] == "reserved"

    paid = client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    assert paid.status_code == 202
    paid_tag = paid.headers["etag"]
    assert paid_tag != moved.headers["etag"]  # the submission moved the order's version
    assert paid_tag == f'"o{order_id}v{paid.json()["version"]}"'

    # A long poll with the 202's ETag is held until the capture, then answers the confirmed order.
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(status, client, order_id, headers, paid_tag, wait="20")
        wait_for(lambda: client.app.state.waiters.waiting() == 1, what="the long poll to be held")
        with events.collecting():
            payment_steps.capture(order_id)
        announce(order_id)
        confirmed = answer.result(timeout=30)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert confirmed.headers["etag"] != paid_tag


def test_an_idempotent_replay_carries_the_orders_current_etag(client: Any, no_worker: None) -> None:
    headers = register_shopper(client, "replay@example.com")
    item = Product.create(sku="SKU-F", name="Tee", slug="tee-f", price=9000, stock_quantity=3, tags=[], images=[])
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "session-replay"}
    )
    sent = {**headers, "X-Session-ID": "session-replay", "Idempotency-Key": "replay-1"}
    first = client.post(f"{API}/orders", json=checkout_body(), headers=sent)
    with events.collecting():
        pipeline.reserve_stock(first.json()["id"])
    again = client.post(f"{API}/orders", json=checkout_body(), headers=sent)
    assert again.status_code == 202 and again.json()["status"] == "reserved"
    assert again.headers["etag"] != first.headers["etag"]
    assert status(client, first.json()["id"], headers, again.headers["etag"]).status_code == 304
