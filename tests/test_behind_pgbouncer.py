"""The shop behind PgBouncer in transaction pooling mode: two web processes and a Celery worker
reach PostgreSQL through a pool of POOL_SIZE server connections, far fewer than their client
connections, and every checkout still ends confirmed, paid once, with the stock conserved. LISTEN
and the migrations' advisory lock keep a direct session (DATABASE_DIRECT_URL), and the catalogue
cache still hears every product change; the first test shows why they must.

Needs the `pgbouncer` binary (`make pgbouncer` installs Debian's package); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg2
import pytest

from embedded import free_port
from models.infra.db import db
from models.payments.dummy import DummyGateway
from models.tables import Order, Product
from tests.pgbouncer import PgBouncer, pgbouncer_binary
from tests.support import WorkerProcess, checkout_body, stop_process, wait_for

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]
API = "/api/v1"
ROOT = Path(__file__).resolve().parent.parent
POOL_SIZE = 3  # server connections per alias: well below the clients the processes open
SHOPPERS = 20
START_STOCK = 100
CHANNEL = "products_changed"


@pytest.fixture(scope="module")
def bouncer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (`make pgbouncer`, or apt-get install pgbouncer)")
    log = tmp_path_factory.mktemp("pgbouncer") / "pgbouncer.log"
    server = PgBouncer(os.environ["DATABASE_URL"], ("shop", "probe"), POOL_SIZE, log).start()
    yield server
    server.stop()


def _direct() -> Any:
    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    conn.autocommit = True
    return conn


def test_session_state_stays_on_a_server_connection_other_clients_get(bouncer: PgBouncer) -> None:
    """Why LISTEN and session advisory locks need DATABASE_DIRECT_URL: through a transaction pool,
    a client's LISTEN and lock stay on the server connection it happened to get, which the next
    client is given, while the client's own next statement runs elsewhere."""
    first = psycopg2.connect(bouncer.url("probe"))  # the probe pool is fresh: no server connection yet
    first.autocommit = True
    second = psycopg2.connect(bouncer.url("probe"))  # not autocommit: holds its transaction below
    try:
        with first.cursor() as cursor:
            cursor.execute(f'LISTEN "{CHANNEL}"')
            cursor.execute("SELECT pg_advisory_lock(727001), pg_backend_pid()")
            (_, listener_pid) = cursor.fetchone()
        with second.cursor() as cursor:
            # The pool's one idle server connection: the first client's session, with its state.
            cursor.execute("SELECT pg_listening_channels(), pg_try_advisory_lock(727001), pg_backend_pid()")
            heard, locked, pid = cursor.fetchone()
            assert (heard, locked, pid) == (CHANNEL, True, listener_pid)
            # While the second client holds it, the first one's statements run in another session.
            with first.cursor() as other:
                other.execute("SELECT array(SELECT pg_listening_channels()), pg_advisory_unlock(727001)")
                assert other.fetchone() == ([], False)  # not listening; the unlock finds no lock
        second.rollback()
    finally:
        first.close()
        second.close()
    # Directly, one session keeps both, for as long as the connection lives.
    conn = _direct()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'LISTEN "{CHANNEL}"')
            cursor.execute("SELECT pg_advisory_lock(727002)")
            cursor.execute("SELECT array(SELECT pg_listening_channels()), pg_advisory_unlock(727002)")
            assert cursor.fetchone() == ([CHANNEL], True)
    finally:
        conn.close()


def test_migrate_needs_only_the_direct_url() -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    env = {**os.environ, "DATABASE_URL": nowhere, "DATABASE_DIRECT_URL": os.environ["DATABASE_URL"]}
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "database is up to date" in done.stdout


class WebProcess:
    """`uvicorn web.app:app` as the Procfile runs it, with its own environment and log."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*args, "--no-access-log"],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log_path = log_path

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"uvicorn exited with {self.process.returncode}; see {self.log_path}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        stop_process(self.process)


def _listeners() -> dict[str, int]:
    """application_name -> backend pid of each web process's LISTEN session."""
    conn = _direct()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT application_name, pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = %s AND application_name LIKE 'bouncer-web-%%'",
                (f'LISTEN "{CHANNEL}"',),
            )
            return dict(cursor.fetchall())
    finally:
        conn.close()


def _product_page(web: WebProcess, product_id: int) -> dict[str, Any]:
    response = httpx.get(f"{web.url}{API}/products/{product_id}", timeout=30)  # anonymous: cached
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_checkouts_through_a_transaction_pool(
    bouncer: PgBouncer, _worker_process: WorkerProcess, make_user: Any
) -> None:
    _worker_process.stop()  # the session's worker talks to PostgreSQL directly: only ours may run
    logs = Path(bouncer.log_path).parent
    through_pool = {
        "DATABASE_URL": bouncer.url("shop"),
        "DATABASE_DIRECT_URL": os.environ["DATABASE_URL"],
        # Only PostgreSQL's announcements may refresh a cached product page here, not its age.
        "CATALOG_CACHE_TTL": "3600",
        "CATALOG_PRODUCT_TTL": "3600",
    }
    products = [
        Product.create(
            sku=f"PGB-{i}", name=f"Pooled {i}", slug=f"pooled-{i}", price=10000 + i, stock_quantity=START_STOCK
        )
        for i in range(4)
    ]
    shoppers = [make_user()[1] for _ in range(SHOPPERS)]
    _, admin = make_user(email="admin@example.com", admin=True)
    webs = [WebProcess({**through_pool, "PGAPPNAME": f"bouncer-web-{n}"}, logs / f"web-{n}.log") for n in "ab"]
    worker = WorkerProcess(ROOT, logs / "worker.log", concurrency=2)
    try:
        worker.start(env=through_pool)
        for web in webs:
            wait_for(web.ready, timeout=60, interval=0.2, what=f"{web.url}/readyz (log: {web.log_path})")
        listeners = wait_for(
            lambda: found if len(found := _listeners()) == 2 else None, what="both web processes to LISTEN"
        )
        pooled_pids = {row["remote_pid"] for row in bouncer.show("SERVERS")}
        assert not pooled_pids & set(listeners.values()), "a LISTEN went through the pool"
        # Web b caches every product page now; only an announcement can make it show another.
        before = {p.id: _product_page(webs[1], p.id) for p in products}
        assert {page["available_quantity"] for page in before.values()} == {START_STOCK}

        statuses: list[int] = []
        lock = threading.Lock()

        def shop(index: int) -> tuple[int, int, int]:
            item, quantity = products[index % len(products)], 1 + index % 3
            headers = shoppers[index]
            with httpx.Client(base_url=webs[index % 2].url, timeout=60) as http:

                def send(method: str, url: str, **kwargs: Any) -> Any:
                    response = http.request(method, url, **kwargs)
                    with lock:
                        statuses.append(response.status_code)
                    return response

                session = {"X-Session-ID": f"pgbouncer-{index:04d}"}
                added = send(
                    "POST", f"{API}/cart/items", json={"product_id": item.id, "quantity": quantity}, headers=session
                )
                assert added.status_code == 200, added.text
                key = {"Idempotency-Key": uuid.uuid4().hex}
                placed = send("POST", f"{API}/orders", json=checkout_body(), headers={**headers, **session, **key})
                assert placed.status_code == 202, placed.text
                order_id = int(placed.json()["id"])

                def reached(wanted: str) -> bool:
                    status = send("GET", f"{API}/orders/{order_id}/status", headers=headers)
                    assert status.status_code == 200, status.text
                    assert status.json()["status"] in ("pending", "reserved", "confirmed"), status.text
                    return bool(status.json()["status"] == wanted)

                wait_for(lambda: reached("reserved"), timeout=60, interval=0.05, what=f"order {order_id} reserved")
                paid = send("POST", f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
                assert paid.status_code == 202, paid.text
                wait_for(lambda: reached("confirmed"), timeout=60, interval=0.05, what=f"order {order_id} confirmed")
                return order_id, item.id, quantity

        with ThreadPoolExecutor(max_workers=SHOPPERS) as pool:
            placed = list(pool.map(shop, range(SHOPPERS)))

        assert statuses and max(statuses) < 500, sorted(set(statuses))
        with db.obj.connection_context():
            orders = {o.id: o for o in Order.select().where(Order.id.in_([o for o, _, _ in placed]))}
            assert {o.status for o in orders.values()} == {"confirmed"}
            sold = {p.id: 0 for p in products}
            for _, product_id, quantity in placed:
                sold[product_id] += quantity
            stock = {p.id: Product.get_by_id(p.id).stock_quantity for p in products}
            assert stock == {pid: START_STOCK - n for pid, n in sold.items()}, "stock not conserved"
            charges = DummyGateway.ledger().charges
            assert sorted(charges.values()) == sorted(o.total for o in orders.values()), "not one capture each"
            captures = db.obj.execute_sql(
                "SELECT order_id, count(*) FROM order_events WHERE type = 'payment_captured' AND order_id = ANY(%s) "
                "GROUP BY order_id",
                (list(orders),),
            ).fetchall()
            assert sorted(captures) == [(order_id, 1) for order_id in sorted(orders)]

        # The worker reserved through the pool; the commits' NOTIFYs reached web b's direct LISTEN.
        for p in products:
            wait_for(
                lambda p=p: _product_page(webs[1], p.id)["available_quantity"] == stock[p.id],
                what=f"web b to show product {p.id}'s new stock",
            )
        # A change made through web a's API reaches web b's cache the same way.
        changed = httpx.patch(f"{webs[0].url}{API}/products/{products[0].id}", json={"price": 777}, headers=admin)
        assert changed.status_code == 200, changed.text
        wait_for(lambda: _product_page(webs[1], products[0].id)["price"] == 777, what="web b to show the new price")
        assert _listeners() == listeners, "a listener reconnected (and cleared its cache) meanwhile"

        # Fewer server connections served more clients: PgBouncer's own account.
        clients = [c for c in bouncer.show("CLIENTS") if c["database"] == "shop"]
        servers = [s for s in bouncer.show("SERVERS") if s["database"] == "shop"]
        (stats,) = [s for s in bouncer.show("STATS") if s["database"] == "shop"]
        assert 0 < len(servers) <= POOL_SIZE < len(clients), (
            f"{len(clients)} client connections, {len(servers)} server connections"
        )
        assert stats["total_xact_count"] > len(clients), stats
    finally:
        for web in webs:
            web.stop()
        worker.stop()
