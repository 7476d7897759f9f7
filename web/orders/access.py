"""Who is asking about an order: a signed-in customer (or admin) with an access token, or a guest
with the order token of that very order. An order token is good for its own order's GET, /status,
/pay and DELETE only: these endpoints call `customer_for`; every other endpoint reads the bearer
token as an access token, which an order token is not (401)."""

from __future__ import annotations

from starlette.requests import Request

from models.accounts import service as accounts
from models.errors import AuthError, NotFound
from models.orders import guests
from web.api import run
from web.auth import bearer_token

NO_TOKEN = "Send an access token, or a guest's order token, as 'Authorization: Bearer <token>'."


def token_of(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise AuthError("not_authenticated", NO_TOKEN)
    return token


def guest_order(token: str, order_id: int) -> guests.GuestAccess | None:
    """The guest's access when token is an order token (for order_id, else 404); None for any other
    token. Raises AuthError token_expired, NotFound order_not_found. No database read."""
    named = guests.order_in_token(token)
    if named is None:
        return None
    if named != order_id:
        raise NotFound("order_not_found", "No such order.", order_id=order_id)
    return guests.GuestAccess(order_id)


async def customer_for(request: Request, order_id: int) -> guests.Customer:
    """The guest (order token for this order) or the user (access token) behind the request.

    Raises AuthError not_authenticated / token_expired, NotFound order_not_found (another order's token)."""
    token = token_of(request)
    guest = guest_order(token, order_id)
    if guest is not None:
        return guest
    user = await run(accounts.authenticate, token)
    request.state.user_id = user.id
    return user
