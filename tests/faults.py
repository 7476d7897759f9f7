"""The fault-injection harness: the whole shop as `make run` runs it (manage.py dev, its own
embedded PostgreSQL and Redis under var/test/faults), shoppers placing and paying orders over
HTTP, and the faults an operator meets, injected into the real processes. Used by
tests/test_faults_under_load.py (one short round in `make test`, several in `make soak`)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil
import psycopg2

from embedded import free_port
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent
HANG = 15.0  # seconds: a request still unanswered after this counts as a hang
SOLD_OUT_SOON = "Waffle Henley"  # 3 in stock: the shoppers' 409s, and orders that fail for stock
PRODUCTS = ["Heavyweight Pocket Tee", "Canvas Tote", "Stoneware Mug", SOLD_OUT_SOON]
ADDRESS = {
    "recipient_name": "Kim Minji",
    "phone": "010-1234-5678",
    "postal_code": "04524",
    "address_line1": "1 Sejong-daero",
    "city": "Seoul",
}


class Stack:
    """`python manage.py dev` in a session of its own, output in var/test/faults/stack.log."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.port, self.flower_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = var.parent / f"{var.name}-stack.log"
        self.database_url = ""
        self.secret_key = secrets.token_urlsafe(48)  # one per stack: tokens outlive a restart

    @classmethod
    def fresh(cls, var: Path) -> Stack:
        shutil.rmtree(var, ignore_errors=True)
        var.mkdir(parents=True)
        return cls(var)

    def start(self, timeout: float = 180) -> float:
        """Start and wait for the banner printed once everything answers; returns the seconds taken."""
        keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"}
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            VAR_DIR=str(self.var),
            PORT=str(self.port),
            FLOWER_PORT=str(self.flower_port),
            HOST="127.0.0.1",
            LOG_LEVEL="INFO",
            SECRET_KEY=self.secret_key,
            BCRYPT_ROUNDS="4",
            WORKER_CONCURRENCY="2",
            REGISTER_RATE_LIMIT="1000/hour",
        )
        started = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "dev"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def banner() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"manage.py dev exited with {self.process.returncode}; see {self.log}")
            return "Ctrl-C stops everything." in self.log.read_bytes()[offset:].decode("utf-8", "replace")

        wait_for(banner, timeout=timeout, interval=0.5, what=f"make run's banner (log: {self.log})")
        text = self.log.read_bytes()[offset:].decode("utf-8", "replace")
        match = re.search(r"DATABASE_URL (\S+), REDIS_URL (\S+)\)", text)
        assert match, text[-2000:]
        self.database_url = match.group(1)
        return time.monotonic() - started

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to manage.py dev; returns its exit status."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGINT)
        return self.process.wait(120)

    def kill_everything(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                child.kill()
            self.process.kill()
            self.process.wait(10)
        self._stop_postgres()

    def _stop_postgres(self) -> None:
        """The stack's PostgreSQL runs detached (pgserver starts it with pg_ctl) and stops when the
        last process using it exits normally: a stack killed outright leaves it running. Stop it as
        `pg_ctl stop -m immediate` does (SIGQUIT to the postmaster)."""
        try:
            pid = int((self.var / "postgres" / "postmaster.pid").read_text().split()[0])
            postmaster = psutil.Process(pid)
            if postmaster.name() != "postgres":
                return  # a reused pid
            postmaster.send_signal(signal.SIGQUIT)
            postmaster.wait(10)
        except (OSError, ValueError, IndexError, psutil.Error):
            return  # not running (a stack that stopped cleanly took it down)

    def child(self, *words: str) -> psutil.Process:
        """The supervised process whose command line has these words (waiting while it restarts)."""
        assert self.process is not None
        parent = psutil.Process(self.process.pid)

        def find() -> psutil.Process | None:
            for proc in parent.children(recursive=False):
                try:
                    if all(word in " ".join(proc.cmdline()) for word in words):
                        return proc
                except psutil.Error:
                    continue
            return None

        return wait_for(find, timeout=30, interval=0.1, what=f"a process with {words}")

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(self.database_url)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(query, args)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()


@dataclass
class Outcome:
    at: float
    what: str
    status: int | str  # an HTTP status, or the exception's class name


@dataclass
class Shoppers:
    """Threads, each registering once, then adding to its cart, ordering and paying, in a loop."""

    stack: Stack
    count: int
    product_ids: list[int]
    outcomes: list[Outcome] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for n in range(self.count):
            thread = threading.Thread(target=self._shop, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(HANG * 4)

    def _call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One request; records its outcome. None when it was not answered (refused, reset, timeout)."""
        try:
            response = client.request(method, self.stack.url + path, timeout=HANG, **kwargs)
        except httpx.HTTPError as exc:
            with self.lock:
                self.outcomes.append(Outcome(time.monotonic(), f"{method} {path}", exc.__class__.__name__))
            time.sleep(0.2)
            return None
        with self.lock:
            self.outcomes.append(Outcome(time.monotonic(), f"{method} {_template(path)}", response.status_code))
        if response.status_code == 503:
            time.sleep(0.2)
        return response

    def _until(
        self, client: httpx.Client, method: str, path: str, ok: Callable[[httpx.Response], bool], **kwargs: Any
    ) -> httpx.Response | None:
        """Repeat a request (a shopper retrying) until ok() or the run stops."""
        while not self.stop.is_set():
            response = self._call(client, method, path, **kwargs)
            if response is not None and ok(response):
                return response
        return None

    def _shop(self, n: int) -> None:
        email = f"shopper{n}-{uuid.uuid4().hex[:6]}@example.com"
        with httpx.Client() as client:
            body = {"email": email, "password": "shopper-pass-1", "full_name": f"Shopper {n}"}
            if (
                self._until(client, "POST", "/api/v1/auth/register", lambda r: r.status_code in (201, 409), json=body)
                is None
            ):
                return
            login = self._until(
                client,
                "POST",
                "/api/v1/auth/login",
                lambda r: r.status_code == 200,
                json={"email": email, "password": "shopper-pass-1"},
            )
            if login is None:
                return
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            round_no = 0
            while not self.stop.is_set():
                round_no += 1
                session = {"X-Session-ID": f"fault-{n}-{round_no}-{uuid.uuid4().hex[:8]}"}
                product = self.product_ids[(n + round_no) % len(self.product_ids)]
                if (
                    self._until(
                        client,
                        "POST",
                        "/api/v1/cart/items",
                        lambda r: r.status_code in (200, 409),
                        json={"product_id": product, "quantity": 1},
                        headers=session,
                    )
                    is None
                ):
                    return
                key = {"Idempotency-Key": uuid.uuid4().hex}  # the same key on every retry: one order
                created = self._until(
                    client,
                    "POST",
                    "/api/v1/orders",
                    # 409: a line sold out since the cart took it (the Waffle Henley): emptied below
                    lambda r: r.status_code in (202, 400, 409),
                    json={"shipping_address": ADDRESS, "shipping_method": "standard", "payment_method": "dummy"},
                    headers={**auth, **session, **key},
                )
                if created is None:
                    continue
                if created.status_code == 409:
                    # A signed-in shopper's carts are one cart (the customer's): the sold-out line
                    # stays in it for every later session until the shopper takes it out, as a
                    # storefront's shopper would. Else this shopper's every checkout is a 409.
                    self._until(
                        client, "DELETE", "/api/v1/cart", lambda r: r.status_code == 204, headers={**auth, **session}
                    )
                if created.status_code != 202:
                    continue
                order_id = created.json()["id"]
                with self.lock:
                    self.orders.append(order_id)
                status = self._until(
                    client,
                    "GET",
                    f"/api/v1/orders/{order_id}/status?wait=5",
                    lambda r: r.status_code == 200 and r.json()["status"] != "pending",
                    headers=auth,
                )
                if status is None or status.json()["status"] != "reserved":
                    continue
                self._until(
                    client,
                    "POST",
                    f"/api/v1/orders/{order_id}/pay",
                    lambda r: r.status_code in (202, 409),
                    json={"token": "tok_ok"},
                    headers=auth,
                )


def _template(path: str) -> str:
    return re.sub(r"/\d+", "/{id}", path.split("?")[0])


def recovered(stack: Stack) -> bool:
    """Ready (database, Redis, broker) and a cart write answered: the web door's own Redis client
    has reconnected, not only the readiness check's."""
    try:
        if httpx.get(f"{stack.url}/readyz", timeout=5).status_code != 200:
            return False
        cart = httpx.post(
            f"{stack.url}/api/v1/cart/items",
            json={"product_id": 1, "quantity": 1},
            headers={"X-Session-ID": "recovery-probe"},
            timeout=5,
        )
        return cart.status_code in (200, 404, 409)
    except httpx.HTTPError:
        return False
