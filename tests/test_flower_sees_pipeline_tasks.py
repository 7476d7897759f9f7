"""Operators watch the pipeline in Flower: its HTTP API lists the worker and each pipeline task by
name with the order's number (the task's shadow name) and the order id in its arguments (a real
Flower, a real worker, the real broker); its pages need the same password as its API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

import embedded
from models.tables import Order, Product
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
ROOT = Path(__file__).resolve().parent.parent
AUTH = ("ops", "flower-test-pw")


@pytest.fixture
def flower(tmp_path: Path) -> Any:
    port = embedded.free_port()
    with open(tmp_path / "flower.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks",
                "flower",
                "--address=127.0.0.1",
                f"--port={port}",
                f"--basic-auth={AUTH[0]}:{AUTH[1]}",
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=30, interval=0.2, what="flower to start")
        yield base
    finally:
        process.terminate()
        process.wait(10)


def test_flower_lists_worker_and_pipeline_tasks_with_order_ids(client: Any, worker: Any, flower: str) -> None:
    for path in ("/api/workers", "/", "/tasks"):  # the API and the pages need credentials
        assert httpx.get(f"{flower}{path}", timeout=5).status_code == 401, path

    def workers() -> dict[str, Any]:
        response = httpx.get(f"{flower}/api/workers", params={"refresh": "1"}, auth=AUTH, timeout=10)
        return response.json() if response.status_code == 200 else {}

    # Flower hears task events only once its event receiver is connected: before that, tasks go
    # unseen. A harmless task (an alert for no product) shows when it is.
    assert worker.name in wait_for(workers, timeout=20, interval=0.5, what="flower to see the worker")
    from tasks.app import app

    app.send_task("pipeline.low_stock_alert", kwargs={"product_id": 0})
    wait_for(
        lambda: any(
            t["name"].startswith("pipeline.low_stock_alert")
            for t in httpx.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json().values()
        ),
        timeout=30,
        interval=0.5,
        what="flower to hear task events",
    )
    headers = register_shopper(client, "ana@example.com")
    item = Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])
    session = {"X-Session-ID": "session-one"}
    client.post("/api/v1/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session)
    order_id = client.post("/api/v1/orders", json=checkout_body(), headers={**headers, **session}).json()["id"]
    wait_for(lambda: Order.get_by_id(order_id).status == "reserved", what="reservation")
    client.post(f"/api/v1/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_for(lambda: Order.get_by_id(order_id).status == "confirmed", what="confirmation")
    number = Order.get_by_id(order_id).order_number

    def pipeline_tasks() -> dict[str, str]:
        tasks = httpx.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json()
        found = {t["name"]: t["kwargs"] for t in tasks.values() if f"'order_id': {order_id}" in (t.get("kwargs") or "")}
        # Shown as "<task> <order number>": strip the number, which every pipeline task carries.
        return {name.removesuffix(f" {number}"): kwargs for name, kwargs in found.items() if name.endswith(number)}

    wanted = {"pipeline.reserve_stock", "pipeline.capture_payment", "pipeline.send_order_email"}
    seen = wait_for(
        lambda: (found := pipeline_tasks()) and wanted <= set(found) and found,
        timeout=20,
        interval=0.5,
        what="flower to list the pipeline tasks",
    )
    assert seen["pipeline.capture_payment"] == f"{{'order_id': {order_id}}}"
    assert seen["pipeline.send_order_email"] == f"{{'order_id': {order_id}, 'kind': 'confirmation'}}"
