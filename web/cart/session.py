"""Which cart a request means: the X-Session-ID's cart for an anonymous caller (or, once that session
was attached, the customer's it points to), the customer's own cart for a signed-in caller, after
attaching the session it came with (models/cart/owners.py). Used by /cart and by POST /orders."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from models.cart import owners
from models.cart import store as cart
from models.tables import User
from web.api import raw_header


@dataclass(frozen=True)
class CartRef:
    cart_id: str  # the key's id in Redis (models/cart/store.py)
    session_id: str | None  # the X-Session-ID the request sent, shown in the answer


async def cart_for(request: Request, user: User | None, session_required: bool = False) -> CartRef:
    """The request's cart. Raises InvalidInput invalid_session for a malformed X-Session-ID, or a
    missing one when the caller is anonymous or session_required."""
    raw = raw_header(request, b"x-session-id")
    if user is None or session_required or raw is not None:
        session_id: str | None = cart.validate_session_id(raw)
    else:
        session_id = None
    if user is None:
        assert session_id is not None
        return CartRef(session_id, session_id)
    if session_id is None:
        return CartRef(owners.customer_cart_id(user.id), None)
    return CartRef(await owners.attach(session_id, user.id, request.app.state.catalog.cart_rows), session_id)
