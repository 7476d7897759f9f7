#!/usr/bin/env python
"""Operator commands: migrate, seed-demo, create-admin, dev (everything for local work), mailsink."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))


def _ensure_services(need_redis: bool = False) -> list[object]:
    """Start embedded PostgreSQL/Redis for whatever DATABASE_URL/REDIS_URL leave unset."""
    from dotenv import load_dotenv

    import embedded

    load_dotenv(ROOT / ".env", override=False)
    env, handles = embedded.start_services(redis=need_redis)
    os.environ.update(env)
    return handles


def ensure_secret_key(embedded_only: bool = False, path: Path | None = None) -> None:
    """Local work: SECRET_KEY from the environment, else the key kept in var/secret_key (VAR_DIR),
    else a new random one written there (0600) on first start. With embedded_only, only when the
    database is the embedded one (no DATABASE_URL): a deployment sets SECRET_KEY itself, or refuses
    to start."""
    import secrets

    from dotenv import load_dotenv

    load_dotenv(ROOT / ".env", override=False)
    if os.environ.get("SECRET_KEY", "").strip() or (embedded_only and os.environ.get("DATABASE_URL")):
        return
    path = path or Path(os.environ.get("VAR_DIR") or ROOT / "var") / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        print(f"generated a SECRET_KEY for local work in {path}", flush=True)
    os.environ["SECRET_KEY"] = path.read_text().strip()


def cmd_migrate(args: argparse.Namespace) -> int:
    _ensure_services()
    from models.schema import migrate

    applied = migrate()
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "database is up to date")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    _ensure_services()
    from models.catalog import demo
    from models.infra.db import init_db
    from models.schema import migrate

    init_db()
    migrate()
    inserted, email, password = demo.seed(args.admin_email, args.admin_password)
    print(f"demo catalogue: {inserted} product(s) added")
    if password:
        print(f"admin account: {email} / {password}")
    else:
        print(f"admin account {email} already exists (password unchanged; use create-admin to reset it)")
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    if len(args.password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return 2
    _ensure_services()
    from models.accounts import service as accounts
    from models.infra.db import init_db
    from models.schema import migrate

    init_db()
    migrate()
    user = accounts.create_admin(args.email, args.password)
    print(f"admin {user.email} (id {user.id}) is ready")
    return 0


def cmd_mailsink(args: argparse.Namespace) -> int:
    """An SMTP server that keeps every message in a Maildir (aiosmtpd), for local work."""
    import asyncio

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    maildir = Path(args.maildir)
    maildir.parent.mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(str(maildir)), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"mail sink on 127.0.0.1:{args.port}, storing messages in {maildir}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()
    return 0


def cmd_mail_preview(args: argparse.Namespace) -> int:
    """Every customer email, in each language, rendered from a sample order into files."""
    from models.mail.preview import write_previews

    written = write_previews(Path(args.out))
    print(f"{len(written)} files in {args.out}")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Embedded services + migrate + demo data + web, worker, beat, flower (and a mail sink), kept
    running by supervisor.py; the URLs and credentials are printed last, once everything answers."""
    from devstack import run

    return run.dev(ROOT, admin_email=args.admin_email, admin_password=args.admin_password)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)
    seed = sub.add_parser("seed-demo", help="load the demo catalogue and an admin")
    seed.add_argument("--admin-email", default="admin@shop.local")
    seed.add_argument("--admin-password", default=None)
    seed.set_defaults(func=cmd_seed_demo)
    admin = sub.add_parser("create-admin", help="create or reset an administrator")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.set_defaults(func=cmd_create_admin)
    dev = sub.add_parser("dev", help="run everything for local work")
    dev.add_argument("--admin-email", default="admin@shop.local")
    dev.add_argument("--admin-password", default=None)
    dev.set_defaults(func=cmd_dev)
    mail = sub.add_parser("mailsink", help="a local SMTP server storing mail in var/mail")
    mail.add_argument("--port", type=int, default=1025)
    mail.add_argument("--maildir", default=str(ROOT / "var" / "mail"))
    mail.set_defaults(func=cmd_mailsink)
    preview = sub.add_parser("mail-preview", help="render every customer email into files, to read them")
    preview.add_argument("--out", default=str(ROOT / "var" / "mail-preview"))
    preview.set_defaults(func=cmd_mail_preview)
    args = parser.parse_args(argv)
    ensure_secret_key(embedded_only=args.func is not cmd_dev)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
