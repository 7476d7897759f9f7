"""Processes a benchmark run starts and always stops: uvicorn apps and Celery workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


def uvicorn(app: str, port: int, env: dict[str, str], log: Path, workers: int = 1) -> Process:
    """The same server settings for the shop and the baselines."""
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
    ]
    process = Process(app, args, env, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{app} exited; see {log}")
        try:
            httpx.get(
                f"http://127.0.0.1:{port}/bare" if "baseline" in app else f"http://127.0.0.1:{port}/healthz", timeout=1
            )
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{app} did not start; see {log}")


def celery_worker(concurrency: int, env: dict[str, str], log: Path) -> Process:
    """A worker with `make run`'s settings (prefork), plus the baseline's no-op tasks."""
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-I",
        "bench.celery_noop",
        "-P",
        "prefork",
        "-c",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "WARNING",
        "-n",
        f"bench{concurrency}-{time.time_ns()}@localhost",
    ]
    process = Process("worker", args, env, log)
    time.sleep(3)  # the worker connects and forks its pool
    return process
