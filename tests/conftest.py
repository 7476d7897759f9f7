"""Test fixtures on real services: PostgreSQL and Redis from TEST_DATABASE_URL / TEST_REDIS_URL,
or embedded ones under var/test when those are unset. Nothing here mocks the database or Redis."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import embedded  # noqa: E402

_HANDLES: list[Any] = []


def _configure_environment() -> None:
    if os.environ.get("SHOP_TEST_SERVICES"):
        # A second import of this file (as tests.conftest) would start a second embedded Redis and
        # leave it running: shared helpers live in tests/support.py.
        raise RuntimeError("conftest imported twice: import test helpers from tests.support")
    os.environ["SHOP_TEST_SERVICES"] = "1"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    var = ROOT / "var" / "test"
    if os.environ.get("TEST_DATABASE_URL"):
        os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    if os.environ.get("TEST_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    # The suite empties Redis before every test: nothing to keep, no disk writes.
    env, handles = embedded.start_services(var, database="shop_test", persist=False)
    _HANDLES.extend(handles)
    os.environ.update(env)
    os.environ.update(
        APP_ENV="test",
        BCRYPT_ROUNDS="4",
        FAILPOINTS="1",
        SECRET_KEY=secrets.token_urlsafe(32),  # a new key every run: none is written down anywhere
        CELERY_VISIBILITY_TIMEOUT="5",
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        CELERY_UNACKED_RESTORE_THROTTLE="1",
        STUCK_AFTER="2",
        LOG_LEVEL="WARNING",
    )
    _start_payment_fakes()


def _start_payment_fakes() -> None:
    """Fake Stripe and TossPayments servers (real HTTP, tests/fakes/) for the whole session. Their
    URLs and keys go into the environment before any worker starts, so the web door, the workers and
    the tests all talk to the same two fakes, as a deployment talks to the real gateways."""
    from tests.fakes.stripe_server import FakeStripe
    from tests.fakes.toss_server import FakeToss

    stripe, toss = FakeStripe().start(), FakeToss().start()
    _FAKES.update(stripe=stripe, toss=toss)
    os.environ.update(
        STRIPE_API_KEY=stripe.api_key,
        STRIPE_PUBLISHABLE_KEY=stripe.publishable_key,
        STRIPE_WEBHOOK_SECRET=stripe.webhook_secret,
        STRIPE_API_BASE=stripe.url,
        TOSS_SECRET_KEY=toss.secret_key,
        TOSS_CLIENT_KEY=toss.client_key,
        TOSS_API_BASE=toss.url,
        PAYMENT_HTTP_TIMEOUT="3",
    )


_FAKES: dict[str, Any] = {}
_configure_environment()

from models.infra.db import db, init_db  # noqa: E402
from models.infra.redis_client import get_redis  # noqa: E402


def reset_schema() -> None:
    """Drop everything and migrate from zero: every test session starts on the migrated schema."""
    from models.schema import migrate

    init_db()
    with db.obj.connection_context():
        db.obj.execute_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    migrate()


@pytest.fixture(scope="session", autouse=True)
def _schema() -> Iterator[None]:
    reset_schema()
    yield
    embedded.stop_services(_HANDLES)


# The apps this session has served (web.app's, the live server's): each keeps a catalogue cache.
_APPS: list[Any] = []


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    truncate_all()
    get_redis().flushdb()
    for served in _APPS:
        served.state.catalog.clear()  # an app's catalogue cache must not outlive the data it saw
        served.state.status.clear()  # nor its status copies
    from web.health.routes import READING

    READING.forget()  # nor /metrics' last reading of the checkout's figures
    yield


@pytest.fixture(scope="session")
def embedded_redis() -> embedded.EmbeddedRedis:
    """The suite's own embedded Redis, for tests that stop, kill and restart it (skipped when
    TEST_REDIS_URL names a server the suite does not own)."""
    for handle in _HANDLES:
        if isinstance(handle, embedded.EmbeddedRedis):
            return handle
    pytest.skip("TEST_REDIS_URL names a Redis this suite did not start: it cannot restart it")


@pytest.fixture
def fake_stripe() -> Iterator[Any]:
    """The session's fake Stripe (tests/fakes/stripe_server.py), with no failure armed."""
    fake = _FAKES["stripe"]
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def fake_toss() -> Iterator[Any]:
    """The session's fake TossPayments (tests/fakes/toss_server.py), its clock back at now."""
    fake = _FAKES["toss"]
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def app() -> Any:
    """web.app's app, as uvicorn serves it (the live server has an app of its own)."""
    from web.app import app as asgi_app

    if asgi_app not in _APPS:
        _APPS.append(asgi_app)
    return asgi_app


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """A TestClient whose every response is checked against the OpenAPI document (its status is
    documented for the operation, its JSON body matches the documented schema)."""
    from starlette.testclient import TestClient

    from tests.openapi_check import problems

    found: list[str] = []

    def check(response: Any) -> None:
        response.read()
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        found.extend(
            problems(
                app.state.openapi,
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                body,
            )
        )

    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.event_hooks = {"request": [], "response": [check]}
        yield test_client
    assert found == [], "responses that disagree with the OpenAPI document:\n" + "\n".join(found)


PASSWORD = "correct-horse-9"


@pytest.fixture
def make_user() -> Any:
    """Create a user directly through the domain and return (user, access headers)."""
    from models.accounts import service as accounts

    counter = {"n": 0}

    def factory(email: str | None = None, admin: bool = False, password: str = PASSWORD) -> tuple[Any, dict[str, str]]:
        counter["n"] += 1
        email = email or f"user{counter['n']}@example.com"
        if admin:
            user = accounts.create_admin(email, password)
        else:
            user = accounts.register(email, password, f"User {counter['n']}", None, f"factory-{counter['n']}")
        pair = accounts.issue_tokens(user)
        return user, {"Authorization": f"Bearer {pair.access_token}"}

    return factory


@pytest.fixture
def user_headers(make_user: Any) -> dict[str, str]:
    return make_user()[1]


@pytest.fixture
def admin_headers(make_user: Any) -> dict[str, str]:
    return make_user(email="admin@example.com", admin=True)[1]


# ---------------------------------------------------------------------------------------------
# Pipeline fixtures: a real Celery worker (subprocess, prefork, the real Redis broker) and a real
# HTTP server (uvicorn in a thread) for concurrency tests. Nothing runs in eager mode.
# ---------------------------------------------------------------------------------------------
from tests.support import LiveServer, WorkerProcess, truncate_all  # noqa: E402


@pytest.fixture(scope="session")
def _worker_process() -> Iterator[WorkerProcess]:
    worker = WorkerProcess(ROOT, ROOT / "var" / "test" / "worker.log")
    yield worker
    worker.stop()


@pytest.fixture
def worker(_worker_process: WorkerProcess) -> WorkerProcess:
    """A running Celery worker (restarted if a previous test killed it)."""
    _worker_process.ensure_running()
    return _worker_process


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    _APPS.append(server.app)
    yield server
    server.stop()
