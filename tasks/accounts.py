"""Accounts' housekeeping on beat: used refresh tokens are forgotten once they have expired."""

from __future__ import annotations

from models.accounts import service as accounts
from models.infra.db import db
from tasks.app import app
from tasks.typed import task


@task(app, name="beat.prune_used_refresh_tokens")
def prune_used_refresh_tokens() -> int:
    with db.obj.connection_context():
        return accounts.prune_used_refresh_tokens()
