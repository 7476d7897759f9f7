"""The status poll's read: the order's status row for an access token or a guest's order token,
answered from this app's copies when the change fences say they are current
(models/infra/fences.py), else from PostgreSQL.

Per poll: the token's signature (microseconds), one Redis round trip on the event loop for the
order's fence and the user's auth fence, and a dict lookup. PostgreSQL is read (one query, one
threadpool hop) only when a fence moved, a writer is in flight, the copy is older than
COPY_MAX_AGE, or Redis cannot be reached. Every app write of an order moves its fence before it
commits (models/orders/states.touch) and every revocation moves the user's
(models/accounts/service.logout), so an answer reflects every committed change at once. A write
made outside the app (SQL by hand) is seen once its order is announced, or within COPY_MAX_AGE.

A step's announcement carries the row it committed and the fence counter of its write (changed()):
kept as the copy, it answers the long polls it wakes without a query.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.accounts import service as accounts
from models.accounts import tokens
from models.errors import AuthError, NotFound
from models.infra import fences
from models.infra.db import db
from models.orders.states import fence_key
from web.api import run

log = logging.getLogger("shop.status")
COPY_MAX_AGE = 5.0  # seconds a copy is trusted at most, whatever its fence says
MAX_COPIES = 50_000  # per kind; the oldest go first

ROW = ("id", "order_number", "status", "payment_status", "version", "updated_at")
# The order and the user in one round trip, whoever may read them: the checks are made on the copy.
READ_SQL = """
SELECT o.id, o.order_number, o.status, o.payment_status, o.version, o.updated_at, o.user_id,
       u.token_version, u.is_active, u.is_admin
FROM (SELECT 1) AS one
LEFT JOIN orders o ON o.id = %s
LEFT JOIN users u ON u.id = %s"""


@dataclass(frozen=True, slots=True)
class OrderCopy:
    fence: str
    row: dict[str, Any] | None  # None: no such order
    user_id: int | None
    read_at: float


@dataclass(frozen=True, slots=True)
class UserCopy:
    fence: str
    token_version: int | None  # None: no such user
    is_active: bool
    is_admin: bool
    read_at: float


class StatusReader:
    """One app's copies of order status rows and of users' token state."""

    def __init__(self) -> None:
        self.orders: dict[int, OrderCopy] = {}
        self.users: dict[int, UserCopy] = {}
        self.reads = 0  # PostgreSQL reads (tests, diagnostics)

    def changed(self, order_id: int, announced: str | None = None) -> None:
        """An order's change was announced: keep the row it carries as the order's copy, under the
        fence counter the writer moved the fence to (models.orders.states.announcement), or drop
        the copy when it carries none. Such a copy is served only while the fence still shows that
        counter with no writer in flight: no write has committed since the announced one."""
        if announced is None:
            self.orders.pop(order_id, None)
            return
        counter, _, text = announced.partition(" ")
        row = json.loads(text)
        user_id = row.pop("user_id")
        row["id"], row["updated_at"] = order_id, datetime.fromisoformat(row["updated_at"])
        self._keep(self.orders, order_id, OrderCopy(counter, row, user_id, time.monotonic()))

    def clear(self) -> None:
        self.orders.clear()
        self.users.clear()

    async def read(self, token: str, order_id: int, guest: bool) -> dict[str, Any]:
        """The status row the token may see; raises AuthError (not_authenticated, token_expired)
        or NotFound order_not_found, as the query path always has. `guest`: token is an order
        token already checked to name this order."""
        claims = None if guest else tokens.verify(token, tokens.ACCESS)
        keys = [fence_key(order_id)] if claims is None else [fence_key(order_id), accounts.auth_fence(claims.user_id)]
        try:
            seen = await fences.read(keys)
        except Exception as exc:  # Redis unreachable: no copy can be trusted
            if self.orders or self.users:  # once per outage, not once per poll
                log.warning("status polls read PostgreSQL: Redis fences unreadable (%s)", exc.__class__.__name__)
            self.clear()
            seen = None
        now = time.monotonic()
        order = self.orders.get(order_id)
        user = self.users.get(claims.user_id) if claims is not None else None
        current = (
            seen is not None
            and order is not None
            and order.fence == seen[0][0]
            and now - order.read_at < COPY_MAX_AGE
            and (
                claims is None or (user is not None and user.fence == seen[1][0] and now - user.read_at < COPY_MAX_AGE)
            )
        )
        if not current:
            order, user = self._copies(order_id, claims, seen, now, await run(self._read_database, order_id, claims))
        assert order is not None
        return self._check(order_id, order, user, claims)

    def _read_database(self, order_id: int, claims: tokens.TokenClaims | None) -> tuple[Any, ...]:
        """Both rows, in one query (in the threadpool)."""
        self.reads += 1
        return tuple(db.obj.execute_sql(READ_SQL, (order_id, claims.user_id if claims else None)).fetchone())

    def _copies(
        self,
        order_id: int,
        claims: tokens.TokenClaims | None,
        seen: list[tuple[str, bool]] | None,
        now: float,
        found: tuple[Any, ...],
    ) -> tuple[OrderCopy, UserCopy | None]:
        """The copies of what was read; each kept (on the event loop, where the copies are only
        ever touched) when its fence was seen, before the read, with no writer in flight."""
        order = OrderCopy(
            fence=seen[0][0] if seen else "",
            row=dict(zip(ROW, found[:6], strict=True)) if found[0] is not None else None,
            user_id=found[6],
            read_at=now,
        )
        if seen is not None and not seen[0][1]:
            self._keep(self.orders, order_id, order)
        if claims is None:
            return order, None
        user = UserCopy(
            fence=seen[1][0] if seen else "",
            token_version=found[7],
            is_active=bool(found[8]),
            is_admin=bool(found[9]),
            read_at=now,
        )
        if seen is not None and not seen[1][1]:
            self._keep(self.users, claims.user_id, user)
        return order, user

    @staticmethod
    def _keep(copies: dict[int, Any], key: int, copy: Any) -> None:
        copies.pop(key, None)
        copies[key] = copy
        if len(copies) > MAX_COPIES:
            del copies[next(iter(copies))]

    @staticmethod
    def _check(
        order_id: int, order: OrderCopy, user: UserCopy | None, claims: tokens.TokenClaims | None
    ) -> dict[str, Any]:
        if claims is not None:
            if user is None or user.token_version != claims.version or not user.is_active:
                raise AuthError("not_authenticated", "The token is no longer valid; log in again.")
            allowed = order.user_id == claims.user_id or user.is_admin
        else:
            allowed = order.user_id is None  # a guest's order token reads a guest order only
        if order.row is None or not allowed:
            raise NotFound("order_not_found", "No such order.", order_id=order_id)
        return order.row
