"""Prometheus metrics of the web process (prometheus-client; multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set, as under gunicorn)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

REQUESTS = Counter("http_requests_total", "HTTP requests by route and status", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency by route", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


# The labelled children, looked up once per (method, route, status): labels() takes a lock and
# builds a key on every call, which is a measurable share of a cached catalogue read.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    children = _children.get((method, route, status))
    if children is None:
        children = _children[(method, route, status)] = (REQUESTS.labels(method, route, str(status)),
                                                          LATENCY.labels(method, route))
    children[0].inc()
    children[1].observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text for /metrics (all processes' samples in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
