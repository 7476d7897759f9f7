"""The embedded Redis of `make run` and `make test` goes when the process that started it goes,
even when that process is killed outright (no atexit hook, no teardown)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent
STARTER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import embedded
server = embedded.EmbeddedRedis(Path(sys.argv[2]), persist=False)
server.start()
print(server.port, flush=True)
time.sleep(60)
"""


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_embedded_redis_dies_with_a_killed_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(ROOT), str(tmp_path / "redis")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        port = int(parent.stdout.readline())
        assert answers(port)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not answers(port), timeout=10, what="the orphaned redis-server to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
