"""CPU time of the processes a run involves, read from /proc (Linux): what one confirmed order costs
each part of the stack, and so how many orders/s these cores could confirm at best."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def in_group(pgid: int) -> Callable[[], list[int]]:
    """The processes of a process group (a server and the children it forked)."""
    return lambda: [pid for pid in _pids() if (fields := _stat(pid)) and int(fields[2]) == pgid]


def named(fragment: str) -> Callable[[], list[int]]:
    """The processes whose command line contains fragment (the database and Redis servers)."""

    def find() -> list[int]:
        found = []
        for pid in _pids():
            try:
                if fragment in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    found.append(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
        return found

    return find


def children_of(parent: int) -> Callable[[], list[int]]:
    """A server and the processes it forked (PostgreSQL's postmaster and its backends)."""
    return lambda: [parent] + [pid for pid in _pids() if (fields := _stat(pid)) and int(fields[1]) == parent]


def postgres_server() -> Callable[[], list[int]]:
    """The PostgreSQL server this run uses (found from one of its backends), not every process
    named postgres on the machine; by name when it runs elsewhere."""
    from models.infra.db import db

    (backend,) = db.obj.execute_sql("SELECT pg_backend_pid()").fetchone()
    fields = _stat(int(backend))
    return children_of(int(fields[1])) if fields else named("postgres")


def redis_server() -> Callable[[], list[int]]:
    """The Redis server this run uses (its own process id from INFO); by name when elsewhere."""
    from models.infra.redis_client import get_redis

    pid = int(get_redis().info("server")["process_id"])
    return (lambda: [pid]) if _stat(pid) else named("redis-server")


def seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by pids, with their children that have exited (a
    Celery worker replaces a pool process that passes worker_max_memory_per_child)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICK


class Meter:
    """CPU seconds per part between start() and stop(). Processes are found again at stop(): one
    started meanwhile counts from zero. One that exited meanwhile (a Celery pool process replaced,
    a database backend whose connection closed) is counted by its parent, which reaped it, with
    its whole life; its own figure at start() is subtracted, leaving what it used after."""

    def __init__(self, parts: dict[str, Callable[[], list[int]]]) -> None:
        self.parts = parts
        self.before: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: seconds([pid]) for pid in find()} for name, find in self.parts.items()}

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        return {name: sum(after[name].values()) - sum(self.before[name].values()) for name in self.parts}


def per_unit(used: dict[str, float], units: int, counted: tuple[str, ...]) -> dict[str, Any]:
    """CPU milliseconds each part spent per unit (a confirmed order, a no-op chain), and their sum
    over the `counted` parts; parts not counted (the load generator) are reported beside it."""
    ms = {part: round(seconds * 1000 / max(units, 1), 2) for part, seconds in used.items()}
    return {
        "ms_per_unit": ms,
        "counted": list(counted),
        "counted_ms": round(sum(ms[part] for part in counted), 2),
        "cpu_seconds": round(sum(used.values()), 2),
        "units": units,
    }
