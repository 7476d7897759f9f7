"""The plumbing both fake gateways share: a real HTTP/1.1 server (the standard library's
ThreadingHTTPServer) on 127.0.0.1 and a free port, in a daemon thread, plus what makes a payment
API hard to talk to correctly and therefore worth faking for real:

- idempotency: a response is stored under (credential, Idempotency-Key) once the endpoint begins
  executing and replayed for a retry; a retry racing the first request gets a 409;
- failure injection, one-off, per operation (`fail_next`): `500` (before the work, not stored),
  `stored_500` and `done_500` (a 500 once the endpoint began, kept under the key and replayed,
  as Stripe keeps it: the work not done / done),
  `timeout` (the work is done and stored, then the response is held until the client gives up and
  the connection closed: a lost response), `drop` (the same, closed at once), `decline`, `stall`
  (the request waits before the work, its key "running", until the test calls `release()`: a
  gateway still processing when the client gave up, that finishes afterwards);
- a control API: Python methods for tests in this process, and the same methods over HTTP at
  `POST /_fake/<method>` (JSON keyword arguments) for a fake run on its own.

The gateway modules (stripe_server.py, toss_server.py) implement `route()` and the wire format.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAILURE_MODES = ("500", "stored_500", "done_500", "timeout", "drop", "decline", "rate_limit", "provider_error", "stall")


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    mode: str
    hold: float = 5.0  # seconds a `timeout` keeps the connection open without answering


class LostResponse(Exception):
    """Raised inside the server: the work was done, but no response goes back."""

    def __init__(self, hold: float) -> None:
        super().__init__(f"response lost (held {hold}s)")
        self.hold = hold


class FakeServer:
    """Start with .start(); .url is its base URL. Subclasses implement route() and CONTROL."""

    CONTROL: frozenset[str] = frozenset({"fail_next", "counts", "reset_failures", "stalled", "release"})

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._failures: dict[str, list[Failure]] = defaultdict(list)
        # (credential, key) -> ("running", None) | ("done", (fingerprint, Reply))
        self._idempotency: dict[tuple[str, str], tuple[str, Any]] = {}
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.requests: list[tuple[str, str, str]] = []  # (method, path, idempotency key)
        self._stalls: list[threading.Event] = []  # requests held by a `stall` failure, until release()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeServer:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"{type(self).__name__}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    # ---- control ---------------------------------------------------------------------------
    def fail_next(self, operation: str, mode: str = "500", times: int = 1, hold: float = 5.0) -> None:
        """The next `times` calls of `operation` fail in `mode` (see FAILURE_MODES)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}")
        with self.lock:
            self._failures[operation] += [Failure(mode, hold) for _ in range(times)]

    def reset_failures(self) -> None:
        with self.lock:
            self._failures.clear()
        self.release()

    def stall_if_due(self, operation: str) -> None:
        """Hold this request here, before its work and without the lock, if a `stall` is armed for
        `operation`; it goes on at release(), or after the failure's hold at the latest."""
        with self.lock:
            queue = self._failures.get(operation)
            if not queue or queue[0].mode != "stall":
                return
            failure = queue.pop(0)
            gate = threading.Event()
            self._stalls.append(gate)
        gate.wait(failure.hold)
        with self.lock:
            self._stalls.remove(gate)

    def stalled(self) -> int:
        """How many requests a `stall` holds now."""
        with self.lock:
            return len(self._stalls)

    def release(self) -> None:
        """Let every stalled request go on (its work is done, its response sent)."""
        with self.lock:
            for gate in self._stalls:
                gate.set()

    def reset(self) -> None:
        """Forget armed failures and per-test settings (objects and counts are kept)."""
        self.reset_failures()

    def counts(self, key: str | None = None) -> dict[str, Any]:
        """Operations that took effect, per object (intent / payment key), e.g. {"capture": 1}."""
        with self.lock:
            if key is not None:
                return dict(self._counts.get(key, Counter()))
            return {k: dict(v) for k, v in self._counts.items()}

    def count(self, key: str, operation: str, n: int = 1) -> None:
        with self.lock:
            self._counts[key][operation] += n

    def total(self, operation: str) -> int:
        with self.lock:
            return sum(c[operation] for c in self._counts.values())

    def take_failure(self, operation: str, before: bool) -> Failure | None:
        """The injected failure for this call, if one is due at this point (before/after the work)."""
        with self.lock:
            queue = self._failures.get(operation)
            if not queue:
                return None
            if queue[0].mode == "stall":  # taken by stall_if_due() alone
                return None
            lost = queue[0].mode in ("timeout", "drop")
            if lost == before:
                return None
            return queue.pop(0)

    # ---- idempotency -----------------------------------------------------------------------
    def idempotent(
        self,
        credential: str,
        key: str,
        fingerprint: Any,
        run: Callable[[], Reply],
        conflict: Callable[[], Reply],
        mismatch: Callable[[], Reply] | None,
    ) -> tuple[Reply, bool]:
        """Run once per (credential, key); replay the stored reply after. Returns (reply, replayed)."""
        if not key:
            return run(), False
        slot = (credential, key)
        with self.lock:
            state = self._idempotency.get(slot)
            if state is not None and state[0] == "running":
                return conflict(), False
            if state is not None:
                stored_fingerprint, reply = state[1]
                if mismatch is not None and stored_fingerprint != fingerprint:
                    return mismatch(), False
                return reply, True
            self._idempotency[slot] = ("running", None)
        try:
            reply = run()
        except _NotStored as not_stored:  # failed before the endpoint began: nothing to replay
            with self.lock:
                del self._idempotency[slot]
            return not_stored.reply, False
        except BaseException:
            with self.lock:
                del self._idempotency[slot]
            raise
        with self.lock:
            self._idempotency[slot] = ("done", (fingerprint, reply))
        return reply, False

    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def unauthorized(self) -> Reply:
        raise NotImplementedError

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # ---- the HTTP control door ---------------------------------------------------------------
    def control(self, request: Request) -> Reply:
        name = request.path.removeprefix("/_fake/")
        if name not in self.CONTROL:
            return Reply(404, {"error": f"no control method {name!r}"})
        try:
            kwargs = json.loads(request.body or b"{}")
            return Reply(200, {"result": getattr(self, name)(**kwargs)})
        except (TypeError, ValueError, KeyError) as exc:
            return Reply(400, {"error": str(exc)})


class _NotStored(Exception):
    """A reply produced before the endpoint began (an injected 500): not kept for replays."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def not_stored(reply: Reply) -> _NotStored:
    return _NotStored(reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up on a held response is the point of the exercise


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake = self.server_fake
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
        with fake.lock:
            fake.requests.append((self.command, path, request.header("Idempotency-Key")))
        try:
            reply = fake.control(request) if path.startswith("/_fake/") else fake.route(request)
        except LostResponse as lost:
            self.close_connection = True
            if lost.hold:
                fake.wait(lost.hold)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = json.dumps(reply.body, ensure_ascii=False).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float = 30.0) -> int:
    """POST a webhook the way a gateway does (a plain HTTP client); returns the status (0: no answer)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except OSError:
        return 0


def now() -> float:
    return time.time()
