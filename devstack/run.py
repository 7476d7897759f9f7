"""`make run` (manage.py dev), phase by phase: embedded PostgreSQL and Redis where DATABASE_URL /
REDIS_URL are unset, migrations, the demo data (once per database), then the Procfile's processes
and a mail sink under the supervisor. When every process answers, the URLs and the credentials
are printed last, below the processes' start-up banners.

Ctrl-C ends with exit status 0. The supervisor makes its own process group the terminal's
foreground group, so the terminal's SIGINT reaches it alone and not `make`, which would otherwise
die of the signal (status 130, "Error 130" or "Interrupt") whatever this process returned.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from devstack.supervisor import Program, Supervisor, parse_procfile

# The usual ports of a storefront's development server (Next.js, Create React App; Vite), allowed by
# CORS under make run unless CORS_ORIGINS says otherwise. Production allows no origin by default.
DEV_ORIGINS = ["http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173", "http://127.0.0.1:5173"]
READY_TIMEOUT = 180.0  # seconds to wait for every process before printing the banner anyway


def phase(text: str) -> None:
    print(f"==> {text}", flush=True)


def var_dir(root: Path) -> Path:
    """Where make run keeps its data: VAR_DIR, else var/ beside manage.py."""
    return Path(os.environ.get("VAR_DIR") or root / "var").resolve()


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    """A value kept in a file only this user can read, made on first use."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def _admin_credentials(var: Path, email: str, new_password: str | None) -> str:
    """ "email / password" when the password kept in var/ still works, else how to reset it."""
    from models.tables import User

    keep = var / "admin-password"
    if new_password:
        keep.touch(mode=0o600)
        keep.write_text(new_password + "\n")
    user = User.get_or_none(User.email == email)
    if user is None:
        return f"{email} does not exist (python manage.py create-admin --email E --password P)"
    if keep.exists():
        import bcrypt

        password = keep.read_text().strip()
        if bcrypt.checkpw(password.encode()[:72], user.hashed_password.encode()):
            return f"{email} / {password}"
    return f"{email} (password changed since it was generated; python manage.py create-admin resets it)"


def _foreground() -> Callable[[], None]:
    """Become the terminal's foreground process group (see the module docstring); returns the undo."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
            return lambda: None
        previous = os.getpgrp()
        os.setpgid(0, 0)
        # tcsetpgrp from a background group raises SIGTTOU: ignored here and while giving it back.
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        return lambda: None

    def give_back() -> None:
        try:
            os.tcsetpgrp(fd, previous)
        except OSError:
            pass

    return give_back


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _worker_answers() -> bool:
    from tasks.app import app

    try:
        return bool(app.control.ping(timeout=1.0))
    except Exception:
        return False


def _wait_until_up(sup: Supervisor, checks: dict[str, Callable[[], bool]]) -> list[str]:
    """Supervise while polling each check until all pass; returns the names still down at the end."""
    pending = dict(checks)
    deadline = time.monotonic() + READY_TIMEOUT
    while pending and not sup.stopping and time.monotonic() < deadline:
        sup.supervise_once()
        for name, check in list(pending.items()):
            if check():
                del pending[name]
        time.sleep(0.3)
    return list(pending)


def dev(root: Path, admin_email: str, admin_password: str | None) -> int:
    from dotenv import load_dotenv

    import embedded

    load_dotenv(root / ".env", override=False)
    var = var_dir(root)
    var.mkdir(parents=True, exist_ok=True)
    os.environ["VAR_DIR"] = str(var)
    if not os.environ.get("DATABASE_URL"):
        phase(f"starting PostgreSQL (data in {var / 'postgres'})")
    env, handles = embedded.start_services(var, redis=False)
    os.environ.update(env)
    redis: embedded.EmbeddedRedis | None = None
    if not os.environ.get("REDIS_URL"):
        phase(f"starting Redis (data in {var / 'redis'}, append-only file)")
        redis = embedded.EmbeddedRedis(var / "redis")
        os.environ["REDIS_URL"] = redis.start()
    phase("migrating the database")
    from models.schema import migrate

    migrate()
    phase("loading demo data (once per database)")
    from models.catalog import demo
    from models.infra.db import init_db

    init_db()
    new_password = None
    try:
        inserted, admin_email, new_password = demo.seed(admin_email, admin_password)
        print(f"    {inserted} demo product(s) added" if inserted else "    already loaded", flush=True)
    except Exception as exc:  # demo data is a convenience: never a reason not to start
        print(f"    skipped: {exc.__class__.__name__}: {exc}", flush=True)
    admin = _admin_credentials(var, admin_email, new_password)

    env = dict(os.environ)
    # The Procfile names uvicorn and celery: find them beside this interpreter (.venv/bin).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PORT", "8000")
    env.setdefault("FLOWER_PORT", "5555")
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("CORS_ORIGINS", ",".join(DEV_ORIGINS))
    # Flower's pages and API behind one password, made on first start and kept in var/.
    env.setdefault("FLOWER_BASIC_AUTH", _secret_file(var / "flower-auth", lambda: "ops:" + secrets.token_urlsafe(12)))
    programs = [
        Program(name, command, env, str(root))
        for name, command in parse_procfile((root / "Procfile").read_text()).items()
    ]
    maildir = None
    if not env.get("SMTP_HOST"):
        port = embedded.free_port()
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_TLS="none")
        maildir = var / "mail"
        programs.append(
            Program("mail", f"{sys.executable} manage.py mailsink --port {port} --maildir {maildir}", env, str(root))
        )
    phase(f"starting processes: {', '.join(p.name for p in programs)}")
    sup = Supervisor(programs, redis)
    give_back = _foreground()
    signal.signal(signal.SIGINT, sup.request_stop)
    signal.signal(signal.SIGTERM, sup.request_stop)
    host, port, flower_port = env["HOST"], env["PORT"], env["FLOWER_PORT"]
    try:
        sup.start()
        checks: dict[str, Callable[[], bool]] = {
            "web": lambda: _http_ok(f"http://{host}:{port}/readyz"),
            "worker": _worker_answers,
            "flower": lambda: _http_ok(f"http://{host}:{flower_port}/healthcheck"),
        }
        if maildir is not None:
            checks["mail"] = lambda: _port_open("127.0.0.1", int(env["SMTP_PORT"]))
        down = _wait_until_up(sup, checks)
        if not sup.stopping:
            user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
            lines = [
                "",
                "  The shop is running" + (f" (not answering yet: {', '.join(down)})" if down else "") + ".",
                f"  API       http://{host}:{port}/api/v1   (ready: /readyz, metrics: /metrics)",
                f"  API docs  http://{host}:{port}/api/docs   and   http://{host}:{port}/api/redoc",
                f"  Flower    http://{host}:{flower_port}   user {user} / password {password}",
                f"  Mail      {maildir} (a Maildir: one file per message under new/)"
                if maildir
                else f"  Mail      sent to {env['SMTP_HOST']}:{env.get('SMTP_PORT', '25')}",
                f"  Admin     {admin}",
                f"  Data      {var}   (DATABASE_URL {env['DATABASE_URL']}, REDIS_URL {env['REDIS_URL']})",
                "  Ctrl-C stops everything.",
                "",
            ]
            sup.announce(lines)
        sup.run()
    finally:
        sup.stop()
        embedded.stop_services(handles)
        give_back()
    print("==> stopped", flush=True)
    return 0
