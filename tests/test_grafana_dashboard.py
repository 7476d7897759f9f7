"""The Grafana dashboard in ops/grafana/ graphs metrics that /metrics really serves: every metric
name in its queries appears in a scrape (so renaming a metric without the dashboard fails here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = {"max", "min", "sum", "by", "rate", "increase", "histogram_quantile", "le"}


def test_every_metric_on_the_dashboard_is_served(client: Any) -> None:
    client.get("/healthz")  # at least one request observed, so the http_* series exist
    dashboard = json.loads((ROOT / "ops" / "grafana" / "shop-checkout.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    served = {line.split(" ")[2] for line in client.get("/metrics").text.splitlines() if line.startswith("# TYPE ")}
    served |= {name + suffix for name in served for suffix in ("_total", "_bucket", "_count", "_sum")}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        for target in panel["targets"]:
            expr = re.sub(r"\bby \([^)]*\)", "", target["expr"])  # label names, not metrics
            names = set(re.findall(r"\b[a-z][a-z_]*[a-z]\b", expr)) - FUNCTIONS
            assert names and names <= served, (panel["title"], names - served)
