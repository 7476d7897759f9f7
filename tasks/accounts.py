"""Accounts' housekeeping on beat: used refresh tokens are forgotten once they have expired."""

from __future__ import annotations

from models.accounts import service as accounts
from tasks.app import app
from tasks.connection import connected
from tasks.typed import task


@task(app, name="beat.prune_used_refresh_tokens")
def prune_used_refresh_tokens() -> int:
    with connected():
        return accounts.prune_used_refresh_tokens()
