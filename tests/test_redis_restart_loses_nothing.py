"""Redis restarting (stopped as Ctrl-C stops it, or killed outright) loses nothing and breaks
nothing: the embedded Redis of `make run` keeps carts and queued Celery tasks on disk (AOF), and
every client of the web process (the cart's pipelined async client, the rate limiter, Celery's
publisher) reconnects on the first request after Redis is back, instead of answering 503.

These tests restart the suite's own embedded Redis, so they are skipped when TEST_REDIS_URL names
a server the suite does not own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

import embedded
from models.infra.redis_client import get_redis
from models.tables import Order, Product
from tests.support import WorkerProcess, checkout_body, register_shopper, wait_for

API = "/api/v1"
QUEUE = "celery"  # reserve_stock's queue (celeryconfig.task_routes)


def restart(server: embedded.EmbeddedRedis, how: str) -> None:
    """Stop Redis (SIGTERM, as Ctrl-C of `make run` does, or SIGKILL) and start it again."""
    assert server.process is not None
    if how == "kill":
        server.process.kill()
        server.process.wait(10)
    else:
        server.stop()
    server.start()


@pytest.fixture
def persistent_redis(embedded_redis: embedded.EmbeddedRedis) -> Iterator[embedded.EmbeddedRedis]:
    """The suite's Redis, restarted with `make run`'s persistence for the test, then back to none."""
    embedded_redis.stop()
    shutil.rmtree(embedded_redis.data_dir, ignore_errors=True)
    embedded_redis.persist = True
    embedded_redis.start()
    yield embedded_redis
    embedded_redis.stop()
    shutil.rmtree(embedded_redis.data_dir, ignore_errors=True)
    embedded_redis.persist = False
    embedded_redis.start()


@pytest.fixture
def no_worker(_worker_process: WorkerProcess) -> Iterator[None]:
    """No worker consumes the queue during the test (the next test that needs one restarts it)."""
    _worker_process.stop()
    yield


def product(stock: int = 10) -> Product:
    return Product.create(
        sku="SKU-R",
        name="Item R",
        slug="item-r",
        price=12000,
        stock_quantity=stock,
        category="tops",
        tags=[],
        images=[],
    )


def queued(queue: str = QUEUE) -> int:
    return int(get_redis().llen(queue))


@pytest.mark.pipeline
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_cart_and_a_queued_task_survive_a_restart(
    how: str, persistent_redis: embedded.EmbeddedRedis, no_worker: None, client: Any, _worker_process: WorkerProcess
) -> None:
    item = product()
    headers = register_shopper(client, "keep@example.com")
    session = {"X-Session-ID": "survivor-cart"}
    assert (
        client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 2}, headers=session).status_code
        == 200
    )
    response = client.post(f"{API}/orders", json=checkout_body(), headers={**headers, **session})
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    assert queued() == 1  # reserve_stock, waiting for a worker

    restart(persistent_redis, how)

    assert queued() == 1
    cart = client.get(f"{API}/cart", headers=session)
    assert cart.status_code == 200 and [line["quantity"] for line in cart.json()["items"]] == [2]
    _worker_process.start()  # the task published before the restart is the one that runs
    wait_for(lambda: Order.get_by_id(order_id).status == "reserved", timeout=30, what="the queued reservation")


def test_every_client_reconnects_on_the_first_request_after_redis_returns(
    embedded_redis: embedded.EmbeddedRedis, no_worker: None, client: Any
) -> None:
    item = product()
    headers = register_shopper(client, "back@example.com")
    session = {"X-Session-ID": "reconnect-cart"}
    wrong = {"email": "back@example.com", "password": "not-the-password"}
    # Every client holds a pooled connection before Redis goes away.
    assert (
        client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session).status_code
        == 200
    )
    assert client.post(f"{API}/auth/login", json=wrong).status_code == 401
    assert client.post(f"{API}/orders", json=checkout_body(), headers={**headers, **session}).status_code == 202
    assert queued() == 1

    for how in ("kill", "stop"):
        restart(embedded_redis, how)  # not persistent: Redis comes back empty
        assert client.get("/readyz").status_code == 200
        # The first request of each kind is served, not answered 503.
        add = client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session)
        assert add.status_code == 200, add.text
        assert client.post(f"{API}/auth/login", json=wrong).status_code == 401
        assert client.post(f"{API}/orders", json=checkout_body(), headers={**headers, **session}).status_code == 202
        assert queued() == 1  # the order's reserve_stock was published on the new connection
        get_redis().delete(QUEUE)
