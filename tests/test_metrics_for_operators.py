"""/metrics, served by prometheus-client's own ASGI app, shows what an operator of the checkout
watches, the same from every web process: orders by status transition, payment outcomes by
gateway, task runs by task and outcome, queue depth per queue, the oldest waiting order's age,
and emails by status (a real worker runs a real checkout first)."""

from __future__ import annotations

import gzip
import re
from typing import Any

import pytest

from models.tables import Order, Product
from tests.support import WorkerProcess, checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} for every sample line."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_checkout_figures_after_an_order_is_paid(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ops@example.com")
    item = Product.create(sku="SKU-M", name="Tee", slug="tee-m", price=20000, stock_quantity=5, tags=[], images=[])
    session = {"X-Session-ID": "metrics-session"}
    client.post("/api/v1/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session)
    order_id = client.post("/api/v1/orders", json=checkout_body(), headers={**headers, **session}).json()["id"]
    wait_for(lambda: Order.get_by_id(order_id).status == "reserved", what="reservation")
    client.post(f"/api/v1/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_for(lambda: Order.get_by_id(order_id).status == "confirmed", what="confirmation")
    wait_for(
        lambda: 'outcome="succeeded",task="pipeline.send_order_email"' in client.get("/metrics").text,
        what="the email task to be counted",
    )

    values = samples(client.get("/metrics").text)
    assert values['shop_order_transitions_total{from_status="pending",to_status="reserved"}'] == 1
    assert values['shop_order_transitions_total{from_status="reserved",to_status="confirmed"}'] == 1
    assert values['shop_payment_outcomes_total{gateway="dummy",outcome="captured"}'] == 1
    assert values['shop_task_runs_total{outcome="succeeded",task="pipeline.reserve_stock"}'] >= 1
    assert values['shop_task_runs_total{outcome="succeeded",task="pipeline.capture_payment"}'] >= 1
    assert values['shop_emails{kind="confirmation",status="sent"}'] == 1
    assert values['shop_queue_depth{queue="payments"}'] == 0
    assert values['shop_oldest_waiting_order_seconds{waiting_for="reservation"}'] == 0
    assert values['shop_stats_source_up{source="database"}'] == values['shop_stats_source_up{source="redis"}'] == 1
    assert any(key.startswith("http_requests_total{") for key in values)


@pytest.fixture
def no_worker(_worker_process: WorkerProcess) -> None:
    """Nothing consumes the queues during the test (the next test that needs a worker starts one)."""
    _worker_process.stop()


def test_the_oldest_waiting_order_and_failed_tasks_show(client: Any, no_worker: None) -> None:
    headers = register_shopper(client, "waits@example.com")
    item = Product.create(sku="SKU-W", name="Tee", slug="tee-w", price=20000, stock_quantity=5, tags=[], images=[])
    session = {"X-Session-ID": "waiting-session"}
    client.post("/api/v1/cart/items", json={"product_id": item.id, "quantity": 1}, headers=session)
    client.post("/api/v1/orders", json=checkout_body(), headers={**headers, **session})  # no worker: stays pending
    from models.infra.stats import count_task

    count_task("pipeline.capture_payment", "retried")
    wait_for(
        lambda: (
            samples(client.get("/metrics").text)['shop_oldest_waiting_order_seconds{waiting_for="reservation"}'] > 0
        ),
        what="the pending order to age",
    )
    values = samples(client.get("/metrics").text)
    assert values['shop_queue_depth{queue="celery"}'] == 1  # its reservation, waiting for a worker
    assert values['shop_task_runs_total{outcome="retried",task="pipeline.capture_payment"}'] == 1


def test_served_by_prometheus_clients_app(client: Any) -> None:
    plain = client.get("/metrics")
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert re.search(r"^# TYPE shop_queue_depth gauge$", plain.text, re.M)
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    zipped = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip" or gzip.decompress(zipped.content)
    only = client.get("/metrics", params={"name[]": "shop_queue_depth"})
    assert "shop_queue_depth" in only.text and "shop_order_transitions" not in only.text


def test_a_burst_of_scrapes_reads_the_figures_once(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """/metrics is served to whoever reaches it, and each reading aggregates the order timeline and
    the email log: however many ask at once, one reading a second per process goes to PostgreSQL."""
    from concurrent.futures import ThreadPoolExecutor

    from models.infra import stats
    from web.health import routes

    readings = []
    real_read = stats.read

    def counted() -> stats.Stats:
        readings.append(1)
        return real_read()

    monkeypatch.setattr(stats, "read", counted)
    monkeypatch.setattr(routes, "STATS_MAX_AGE", 3600.0)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.get("/metrics"), range(40)))
    assert all(a.status_code == 200 and "shop_stats_source_up" in a.text for a in answers)
    assert len(readings) == 1
    monkeypatch.setattr(routes, "STATS_MAX_AGE", 0.0)
    client.get("/metrics")
    assert len(readings) == 2
