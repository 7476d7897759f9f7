"""What one app owns in memory, made by the app factory (web/app.py) and kept on app.state.

Nothing here is a module global: two apps in one process (tests run a TestClient and a live server
side by side) each have their own catalogue cache, status copies and waiters, and request ids, and importing
the web package creates none of them. Routes reach them as `request.app.state.catalog` (or
`.waiters`): plain attributes, so a request pays an attribute access, not State's dict lookup.
"""

from __future__ import annotations

from starlette.datastructures import State

from web.catalog.cache import CatalogCache
from web.middleware import RequestIds
from web.orders.status_reader import StatusReader
from web.orders.status_waiter import StatusWaiters
from web.subscriptions import Subscription


class AppState(State):
    """Starlette's app.state (other names still work the usual way), with typed attributes."""

    catalog: CatalogCache
    waiters: StatusWaiters
    status: StatusReader
    request_ids: RequestIds
    _OWN = frozenset({"catalog", "waiters", "status", "request_ids"})

    def __init__(self) -> None:
        super().__init__()
        self.catalog = CatalogCache()
        self.status = StatusReader()
        self.waiters = StatusWaiters(on_change=self.status.changed, on_gap=self.status.clear)
        self.request_ids = RequestIds()

    def __setattr__(self, key: str, value: object) -> None:
        # These live on the instance itself, past State's dict (read back through __getattr__, a
        # Python call per read).
        if key in self._OWN:
            object.__setattr__(self, key, value)
        else:
            super().__setattr__(key, value)

    @property
    def subscriptions(self) -> list[Subscription]:
        """What the app listens to while it serves (started and stopped by its lifespan):
        PostgreSQL's product announcements for the catalogue cache, Redis's order announcements
        for long polls."""
        return [self.catalog.subscription, self.waiters.subscription]
