"""Tasks are enqueued only after commit and never lost: with the broker down when an order is
placed, the order is still saved (202), and once the broker is back the re-drive moves it on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
from celery import Celery

import embedded
from models.tables import Order, OrderEvent, Product
from tests.support import WorkerProcess, checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"


def start_api(port: int, broker_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CELERY_BROKER_URL": broker_url}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "web.app:app", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, interval=0.2, what="the API subprocess")
    return process


def test_order_placed_while_broker_is_down_progresses_once_it_is_back(tmp_path: Path) -> None:
    broker = embedded.EmbeddedRedis(tmp_path / "broker", persist=False)
    broker.start()
    port = embedded.free_port()
    api = start_api(port, broker.url, tmp_path / "api.log")
    worker = WorkerProcess(ROOT, tmp_path / "worker.log")
    try:
        item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            headers = register_shopper(http, "ana@example.com")
            http.post(
                f"{API}/cart/items",
                json={"product_id": item.id, "quantity": 1},
                headers={"X-Session-ID": "session-one"},
            )
            broker.stop()  # the broker dies between the cart and the checkout
            response = http.post(
                f"{API}/orders", json=checkout_body(), headers={**headers, "X-Session-ID": "session-one"}
            )
            assert response.status_code == 202, response.text
            order_id = response.json()["id"]
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["details"]["checks"]["broker"] is False

        assert Order.get_by_id(order_id).status == "pending"  # saved, though its task was not sent
        broker.start()  # same port: the broker is back, empty
        worker.start(env={"CELERY_BROKER_URL": broker.url})
        sender = Celery(broker=broker.url)
        wait_for(
            lambda: (sender.send_task("beat.redrive_stuck_orders"), Order.get_by_id(order_id).status == "reserved")[1],
            timeout=30,
            interval=1.0,
            what="the re-drive to reserve the order",
        )
        assert Product.get_by_id(item.id).stock_quantity == 4
        reserved = OrderEvent.get(OrderEvent.order == order_id, OrderEvent.type == "stock_reserved")
        assert reserved.task_id
        sender.close()
    finally:
        worker.stop()
        api.terminate()
        api.wait(10)
        broker.stop()
