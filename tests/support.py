"""Test helpers that run real things: a Celery worker subprocess, a uvicorn server, a shopper."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
import uvicorn

import embedded

T = TypeVar("T")


def stop_process(process: subprocess.Popen[Any], kill: Callable[[], None] | None = None) -> None:
    """SIGTERM a child and wait up to 20 s for it, then kill it (kill: how, when the default
    SIGKILL of the process alone is not enough, say a whole process group)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            (kill or process.kill)()
            process.wait(10)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> T:
    """Poll predicate until it returns something truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class WorkerProcess:
    """`celery -A tasks worker` as a child process, as production runs it (prefork, acks_late)."""

    def __init__(self, root: Path, log_path: Path, concurrency: int = 2) -> None:
        self.root = root
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self.name = ""

    def start(self, env: dict[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(self.concurrency),
            "-n",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                cwd=self.root,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        from celery import Celery

        from tasks.app import app as default_app

        broker = (env or {}).get("CELERY_BROKER_URL")
        app = Celery(broker=broker) if broker else default_app

        def answered() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"celery worker exited with {self.process.returncode}; see {self.log_path}")
            try:
                replies = app.control.ping(destination=[self.name], timeout=0.5)
            except (redis.ConnectionError, OSError):  # a broker that has just restarted
                return False
            return any(self.name in reply for reply in replies)

        try:
            wait_for(answered, timeout=60, interval=0.2, what="the celery worker to answer ping")
        finally:
            if app is not default_app:
                app.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> None:
        if not self.running():
            self.start()

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and children), as a machine failure would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            process = self.process
            stop_process(process, kill=lambda: os.killpg(process.pid, 9))
        self.process = None


class LiveServer:
    """The real ASGI app under uvicorn on a free port, in a background thread: an app of its own
    (create_app), so its catalogue cache and listeners are not the TestClient's."""

    def __init__(self) -> None:
        from web.app import create_app

        self.port = embedded.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            limit_concurrency=500,
            backlog=512,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server is not None and self.server.started, timeout=20, what="uvicorn to start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)


def sql_sent(records: list[Any]) -> list[str]:
    """The text of each round trip to PostgreSQL among these log records (peewee's, at DEBUG), with
    every prepared statement (models/infra/db.py) read as its own SQL: "PREPARE n AS ...; EXECUTE
    n(args)" and "EXECUTE n(args)" both read "<the statement's SQL>(args)"."""
    from models.infra.db import prepared_names

    names = prepared_names()
    sent = []
    for record in records:
        if record.name == "peewee":
            text = re.sub(
                r"(DEALLOCATE ALL; )?PREPARE (shop_\w+) AS .*?; (?=EXECUTE \2\b)", "", str(record.msg[0]), flags=re.S
            )
            sent.append(re.sub(r"EXECUTE (shop_\w+)", lambda match: names[match.group(1)], text))
    return sent


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the contract's error body with this status and code; returns the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and isinstance(body["error"]["details"], dict)
    return dict(body["error"])


def register_shopper(client: Any, email: str, password: str = "shopper-pass-1") -> dict[str, str]:
    """Register and log in over HTTP; returns the Authorization header."""
    assert (
        client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "Shopper"}
        ).status_code
        == 201
    )
    tokens = client.post("/api/v1/auth/login", json={"email": email, "password": password}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


ADDRESS = {
    "recipient_name": "Kim Minji",
    "phone": "010-1234-5678",
    "postal_code": "04524",
    "address_line1": "1 Sejong-daero",
    "city": "Seoul",
}


def checkout_body(**overrides: Any) -> dict[str, Any]:
    return {"shipping_address": ADDRESS, "shipping_method": "standard", "payment_method": "dummy", **overrides}


def truncate_all() -> None:
    """Empty every table. Ids keep counting up (no RESTART IDENTITY): a task still in flight from
    the previous test then finds no row with its id instead of acting on this test's data."""
    import peewee

    from models.infra.db import db
    from models.tables import ALL_MODELS

    tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    for attempt in range(10):
        try:
            with db.obj.connection_context():
                db.obj.execute_sql(f"TRUNCATE {tables} CASCADE")
            return
        except peewee.OperationalError:  # a deadlock with a worker finishing the last test's task
            time.sleep(0.1 * (attempt + 1))
    raise RuntimeError("could not truncate the test tables")


def bulk_load(*statements: str | tuple[str, Any], stall_after: float = 240.0) -> list[str]:
    """Run the statements that fill a query-plan test's tables (each a SQL string, or (sql, params)),
    on the test's own connection, and return one line per statement with its time.

    A second connection samples what this one waits on once a second. A statement that runs past
    stall_after seconds is cancelled (statement_timeout) and the test fails with those samples: a
    lock and the query that held it, or the I/O the load was waiting for, rather than a bare
    pytest timeout that says neither."""
    from collections import Counter

    import psycopg2

    from models.infra.db import db

    (pid,) = db.obj.execute_sql("SELECT pg_backend_pid()").fetchone()
    waits: Counter[str] = Counter()
    done = threading.Event()

    def watch() -> None:
        watcher = psycopg2.connect(os.environ["DATABASE_URL"])
        watcher.autocommit = True
        try:
            with watcher.cursor() as cursor:
                while not done.wait(1.0):
                    cursor.execute(
                        """SELECT coalesce(a.wait_event_type || ':' || a.wait_event, 'running'),
                                  (SELECT string_agg(b.pid || ' ' || left(b.query, 120), '; ')
                                   FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid)))
                           FROM pg_stat_activity a WHERE a.pid = %s""",
                        (pid,),
                    )
                    for event, blockers in cursor.fetchall():
                        waits[f"{event}" + (f" behind {blockers}" if blockers else "")] += 1
        finally:
            watcher.close()

    thread = threading.Thread(target=watch, name="bulk-load-watcher", daemon=True)
    thread.start()
    timings: list[str] = []
    try:
        db.obj.execute_sql(f"SET statement_timeout = {int(stall_after * 1000)}")
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, None)
            started = time.monotonic()
            try:
                db.obj.execute_sql(sql, params)
            except Exception as error:
                raise AssertionError(
                    f"loading stopped after {time.monotonic() - started:.0f} s ({error!r}) in: {sql.strip()[:200]}\n"
                    "what it waited on (one sample a second): " + repr(waits.most_common(8))
                ) from error
            timings.append(f"{time.monotonic() - started:7.2f} s  {' '.join(sql.split())[:70]}")
    finally:
        db.obj.execute_sql("RESET statement_timeout")
        done.set()
        thread.join(5)
    return timings
