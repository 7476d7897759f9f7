"""gunicorn's settings for the web process of the production image (`gunicorn web.app:app -c
gunicorn.conf.py`): uvicorn workers, proxies trusted only as FORWARDED_ALLOW_IPS says (gunicorn's
own default trusts 127.0.0.1), and Prometheus's multiprocess directory emptied at start and told
when a worker dies, so /metrics adds up the live workers and nothing from a previous run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")  # "" trusts no one
graceful_timeout = 30
accesslog = None  # the app logs one JSON line per request


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
