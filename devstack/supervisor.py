"""The process supervisor of `make run` (manage.py dev): runs the Procfile's processes and the
embedded Redis, prefixes their output with their names, and restarts whatever dies, where honcho
stopped the whole stack when any one process exited (a crashed worker, a killed Redis).

Ctrl-C (SIGINT) or SIGTERM stops everything in order: the web server first (no new orders), then
beat and Flower, then the worker (SIGTERM is Celery's warm shutdown: running tasks finish), the
mail sink last, and the embedded Redis after them (it saves on the way out). A second Ctrl-C
kills whatever is still running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import embedded

BACKOFF_MAX = 30.0  # seconds between restarts of a process that keeps dying
STABLE_AFTER = 60.0  # a process up this long is healthy again: its next crash restarts it at once
STOP_TIMEOUT = 30.0  # seconds a process gets to stop before it is killed (a worker finishing its tasks)


def parse_procfile(text: str) -> dict[str, str]:
    """`name: command` lines, in order (blank lines and # comments skipped)."""
    processes: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


@dataclass
class Program:
    """One supervised command (run by /bin/sh, which execs it, in a process group of its own)."""

    name: str
    command: str
    env: dict[str, str]
    cwd: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 0.0

    def start(self, out: Callable[[str, str], None]) -> None:
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {self.command}"],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=embedded._die_with_parent,
        )
        self.started_at = time.monotonic()
        threading.Thread(target=_pump, args=(self.name, self.process.stdout, out), daemon=True).start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass


def _pump(name: str, stream: IO[bytes] | None, out: Callable[[str, str], None]) -> None:
    assert stream is not None
    for raw in iter(stream.readline, b""):
        out(name, raw.decode("utf-8", "replace").rstrip("\n"))
    stream.close()


@dataclass
class Supervisor:
    programs: list[Program]
    redis: embedded.EmbeddedRedis | None = None
    stream: IO[str] = field(default_factory=lambda: sys.stdout)
    stop_order: list[str] = field(default_factory=lambda: ["web", "beat", "flower", "worker", "mail"])
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _width: int = 0

    def out(self, name: str, line: str) -> None:
        with self._lock:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self.stream.flush()

    def say(self, line: str) -> None:
        self.out("make run", line)

    def announce(self, lines: list[str]) -> None:
        """Lines printed as they are, between the processes' output."""
        with self._lock:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def start(self) -> None:
        self._width = max([len("make run"), *(len(p.name) for p in self.programs)])
        for program in self.programs:
            program.start(self.out)

    def request_stop(self, *_: Any) -> None:
        if self._stopping.is_set():  # a second Ctrl-C: no more waiting
            for program in self.programs:
                program.signal(signal.SIGKILL)
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def supervise_once(self) -> None:
        """Restart the embedded Redis and any process that died (with backoff for repeat crashes)."""
        now = time.monotonic()
        if self.redis is not None and not self.redis.alive() and not self.stopping:
            code = self.redis.process.returncode if self.redis.process else None
            self.say(f"redis exited ({_describe(code)}); restarting it on port {self.redis.port}")
            try:
                self.redis.start()
                self.say("redis is back")
            except RuntimeError as exc:
                self.say(f"redis did not restart: {exc}")
        for program in self.programs:
            if program.alive() or self.stopping:
                continue
            if program.next_start == 0.0:  # just noticed
                code = program.process.returncode if program.process else None
                up = now - program.started_at
                program.backoff = 0.0 if up >= STABLE_AFTER else min(BACKOFF_MAX, max(1.0, program.backoff * 2))
                program.next_start = now + program.backoff
                self.say(
                    f"{program.name} exited ({_describe(code)}) after {up:.0f}s; restarting"
                    + (f" in {program.backoff:.0f}s" if program.backoff else "")
                )
            if now >= program.next_start:
                program.next_start = 0.0
                program.restarts += 1
                program.start(self.out)

    def run(self, poll: float = 0.2) -> None:
        """Supervise until request_stop() (Ctrl-C, SIGTERM); the caller then calls stop()."""
        while not self._stopping.wait(poll):
            self.supervise_once()

    def stop(self) -> None:
        order = sorted(
            self.programs,
            key=lambda p: self.stop_order.index(p.name) if p.name in self.stop_order else len(self.stop_order),
        )
        for program in order:
            if program.alive():
                self.say(f"stopping {program.name}")
                program.signal(signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUT
                while program.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if program.alive():
                    self.say(f"{program.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
                    program.signal(signal.SIGKILL)
                    assert program.process is not None
                    program.process.wait(10)
        if self.redis is not None:
            self.redis.stop()


def _describe(code: int | None) -> str:
    if code is None:
        return "status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
