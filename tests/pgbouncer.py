"""A real PgBouncer in front of the test database, in transaction pooling mode, as a child process.

Each alias in `aliases` is a database name clients connect to; every alias points at the test
database and has a pool of its own (PgBouncer pools per database and user), so one test can use a
fresh pool whatever another did. The admin console (database `pgbouncer`) answers SHOW commands.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2

from embedded import free_port
from models.infra.db import connect_params
from tests.support import stop_process, wait_for


def pgbouncer_binary() -> str | None:
    """The pgbouncer executable (Debian installs it in /usr/sbin), or None."""
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer") if os.access(p, os.X_OK)), None
    )


class PgBouncer:
    """`pgbouncer` with pool_mode = transaction and at most pool_size server connections per alias."""

    def __init__(self, server_url: str, aliases: tuple[str, ...], pool_size: int, log_path: Path) -> None:
        binary = pgbouncer_binary()
        assert binary is not None, "pgbouncer is not installed"
        self.binary = binary
        self.server_url = server_url
        self.aliases = aliases
        self.pool_size = pool_size
        self.log_path = log_path
        self.port = free_port()
        name, params = connect_params(server_url)
        self.host = str(params.get("host", "127.0.0.1"))
        self.user = str(params.get("user") or pwd.getpwuid(os.getuid()).pw_name)
        self._target = " ".join(
            f"{key}={value}"
            for key, value in {
                "host": self.host,
                "port": params.get("port", 5432),
                "dbname": name,
                "user": self.user,
                "password": params.get("password"),
            }.items()
            if value not in (None, "")
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.directory = ""

    def url(self, alias: str) -> str:
        """A postgresql:// URL for clients of this alias."""
        return f"postgresql://{quote(self.user)}@127.0.0.1:{self.port}/{alias}"

    def start(self) -> PgBouncer:
        # Not under pytest's tmp_path: PgBouncer refuses to run as root, and the user it switches to
        # (-u) must be able to read its files.
        self.directory = tempfile.mkdtemp(prefix="pgbouncer-")
        os.chmod(self.directory, 0o755)
        config = Path(self.directory) / "pgbouncer.ini"
        users = Path(self.directory) / "userlist.txt"
        users.write_text(f'"{self.user}" ""\n')
        databases = "\n".join(f"{alias} = {self._target}" for alias in self.aliases)
        config.write_text(
            f"""[databases]
{databases}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
admin_users = {self.user}
pool_mode = transaction
default_pool_size = {self.pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = {self.pool_size}
max_client_conn = 500
server_lifetime = 3600
server_idle_timeout = 3600
"""
        )
        for path in (config, users):
            path.chmod(0o644)
        args = [self.binary]
        if os.geteuid() == 0:
            args += ["-u", _unprivileged_user(self.host)]
        args.append(str(config))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(
            self._answers, timeout=20, interval=0.1, what=f"pgbouncer to accept connections (log: {self.log_path})"
        )
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"pgbouncer exited with {self.process.returncode}; see {self.log_path}")
        try:
            self.show("VERSION")
        except psycopg2.OperationalError:
            return False
        return True

    def show(self, what: str) -> list[dict[str, Any]]:
        """The rows of the admin console's `SHOW what`, as dicts."""
        conn = psycopg2.connect(self.url("pgbouncer"), connect_timeout=5)
        conn.autocommit = True  # the console knows no BEGIN
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"SHOW {what}")
                columns = [c.name for c in cursor.description or ()]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def _unprivileged_user(host: str) -> str:
    """Whom PgBouncer runs as when started by root: the owner of the server's socket directory
    (the embedded PostgreSQL's, when it runs as a user of its own), else postgres or nobody."""
    if host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise AssertionError("pgbouncer will not run as root, and there is neither a postgres nor a nobody user")
