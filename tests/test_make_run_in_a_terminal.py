"""`make run` as a person runs it, in a terminal (a pseudo-terminal here): it says what it is doing
phase by phase, prints the URLs and credentials after every process has started (below the
worker's "ready"), allows a local storefront's origin by CORS, keeps Flower's pages behind a
password, and Ctrl-C, typed at the terminal, ends it with status 0 and no "Error 130"."""

from __future__ import annotations

import os
import pty
import secrets
import select
import shutil
import signal
import time
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from embedded import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "test" / "make-run"


def read_until(fd: int, buffer: bytearray, text: bytes, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while text not in buffer and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return text in buffer
            if not chunk:
                break
            buffer += chunk
    return text in buffer


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_explains_itself_and_ctrl_c_exits_0() -> None:
    shutil.rmtree(VAR, ignore_errors=True)
    port, flower_port = free_port(), free_port()
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "USER"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        VAR_DIR=str(VAR),
        PORT=str(port),
        FLOWER_PORT=str(flower_port),
        SECRET_KEY=secrets.token_urlsafe(48),
        BCRYPT_ROUNDS="4",
        TERM="dumb",
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal session running make, as a shell would
        os.chdir(ROOT)
        os.execvpe("make", ["make", "run"], env)
    output = bytearray()
    try:
        assert read_until(fd, output, b"Ctrl-C stops everything.", timeout=300), output.decode(errors="replace")
        text = output.decode(errors="replace")
        phases = [
            "==> starting PostgreSQL",
            "==> starting Redis",
            "==> migrating the database",
            "==> loading demo data",
            "==> starting processes",
        ]
        positions = [text.index(phase) for phase in phases]
        assert positions == sorted(positions)
        banner = text.index("The shop is running")
        assert text.index("ready.") < banner  # the worker's ready line, then the URLs
        assert f"http://127.0.0.1:{port}/api/docs" in text[banner:] and "Admin     admin@shop.local / " in text
        assert (VAR / "admin-password").stat().st_mode & 0o777 == 0o600
        # A storefront in development works at once; Flower's pages need the password.
        preflight = httpx.options(
            f"http://127.0.0.1:{port}/api/v1/products",
            timeout=10,
            headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers.get("access-control-allow-origin") == "http://localhost:5173"
        assert httpx.get(f"http://127.0.0.1:{flower_port}/", timeout=10).status_code == 401
        user, password = (VAR / "flower-auth").read_text().strip().split(":", 1)
        assert httpx.get(f"http://127.0.0.1:{flower_port}/", auth=(user, password), timeout=10).status_code == 200

        os.write(fd, b"\x03")  # Ctrl-C typed at the terminal
        assert read_until(fd, output, b"==> stopped", timeout=120), output.decode(errors="replace")[-3000:]
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
        assert b"Error 130" not in output and b"Interrupt" not in output
    finally:
        if pid:  # failed: take down make and everything it started (they are in groups of their own)
            for child in psutil.Process(pid).children(recursive=True):
                child.kill()
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
