"""Prometheus metrics, served by prometheus-client's own ASGI app: the web process's requests and
latency (multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set, as under gunicorn), plus the
checkout's figures read at each scrape from PostgreSQL and Redis (models/infra/stats.py): orders
by status transition, payment outcomes by gateway, task runs by outcome, queue depths, the oldest
waiting order, emails by status."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, make_asgi_app, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from models.infra.stats import Stats

REQUESTS = Counter("http_requests_total", "HTTP requests by route and status", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


# The labelled children, looked up once per (method, route, status): labels() takes a lock and
# builds a key on every call, which is a measurable share of a cached catalogue read.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    children = _children.get((method, route, status))
    if children is None:
        children = _children[(method, route, status)] = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(method, route),
        )
    children[0].inc()
    children[1].observe(seconds)


class ShopCollector(Collector):
    """The latest reading (set by the /metrics handler just before each scrape) as metrics."""

    def __init__(self) -> None:
        self.stats = Stats()

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        up = GaugeMetricFamily(
            "shop_stats_source_up", "1 when the source of the shop_* figures answered", labels=["source"]
        )
        for source, ok in stats.up.items():
            up.add_metric([source], 1.0 if ok else 0.0)
        yield up
        families: list[tuple[Any, str, str, list[str], dict[Any, Any]]] = [
            (
                CounterMetricFamily,
                "shop_order_transitions",
                "Order status changes (order timeline)",
                ["from_status", "to_status"],
                stats.transitions,
            ),
            (
                CounterMetricFamily,
                "shop_payment_outcomes",
                "Payment steps by gateway and outcome",
                ["gateway", "outcome"],
                stats.payments,
            ),
            (
                CounterMetricFamily,
                "shop_task_runs",
                "Finished task runs by task and outcome (succeeded, failed, retried)",
                ["task", "outcome"],
                stats.tasks,
            ),
            (
                GaugeMetricFamily,
                "shop_emails",
                "Emails in the email log by kind and status (sent, pending, failed)",
                ["kind", "status"],
                stats.emails,
            ),
            (GaugeMetricFamily, "shop_queue_depth", "Messages waiting in each Celery queue", ["queue"], stats.queues),
            (
                GaugeMetricFamily,
                "shop_oldest_waiting_order_seconds",
                "Age of the oldest order waiting for its "
                "reservation (pending) or for its capture (payment submitted); 0 when none waits",
                ["waiting_for"],
                stats.oldest_waiting,
            ),
        ]
        for kind, name, documentation, labels, values in families:
            family = kind(name, documentation, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key) if isinstance(key, tuple) else [key], float(value))
            yield family


SHOP = ShopCollector()


def _registry() -> CollectorRegistry:
    # auto_describe: the names are learnt from a first collect, so ?name[]=... can filter.
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every worker process's samples, added up
    else:
        registry.register(_ProcessMetrics())
    registry.register(SHOP)
    return registry


class _ProcessMetrics(Collector):
    """This process's own metrics (the default registry), when not in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class ASGIResponse(Response):
    """A response produced by another ASGI app (prometheus-client's), for a registry endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


APP = make_asgi_app(_registry())
