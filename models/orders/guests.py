"""Guest checkout (비회원 주문): who a guest is, the order-scoped token that lets them follow and pay
for that one order, and finding the order again by its number and email.

An order token is signed with SECRET_KEY under its own salt, so it is never an access token (and an
access token is never an order token); it names one order and expires after ORDER_TOKEN_TTL.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired

from models.errors import AuthError, NotFound
from models.infra import ratelimit
from models.infra.settings import get_settings
from models.infra.signed import SignedTokens, peek
from models.tables import Order, User

SALT = "shop.order-token"


@dataclass(frozen=True)
class Guest:
    """The contact details a guest checks out with (orders.guest_*)."""

    email: str
    phone: str
    full_name: str


@dataclass(frozen=True)
class GuestAccess:
    """A guest holding an order token: the customer of that order, and of no other."""

    order_id: int


Customer = User | GuestAccess


def is_customer(order: Order, customer: Customer) -> bool:
    """Whether customer may act on order as its customer (see it, pay it, cancel it)."""
    if isinstance(customer, GuestAccess):
        return order.user_id is None and order.id == customer.order_id
    return order.user_id is not None and order.user_id == customer.id


def normalize_email(email: str) -> str:
    return email.strip().lower()


_ORDER_TOKENS = SignedTokens(SALT)


def _serializer() -> SignedTokens:
    return _ORDER_TOKENS


def sign_order_token(order_id: int) -> str:
    return _serializer().dumps({"oid": order_id})


def order_in_token(token: str) -> int | None:
    """The order an order token names; None when token is not an order token (an access token, or
    junk). Raises AuthError token_expired for an order token past ORDER_TOKEN_TTL."""
    claimed = peek(token)
    if not isinstance(claimed, dict) or "oid" not in claimed:
        return None  # not even shaped like an order token: whatever it is, it is verified as such
    try:
        data = _serializer().loads(token, max_age=get_settings().order_token_ttl)
    except SignatureExpired:
        raise AuthError("token_expired", "This order link has expired; look the order up again.") from None
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("oid"), int):
        return None
    return int(data["oid"])


def lookup(order_number: str, email: str, client: str) -> tuple[int, str]:
    """(order id, a fresh order token) for a guest order with this number and email.

    Every attempt counts against ORDER_LOOKUP_RATE_LIMIT for the client's address. Raises NotFound
    order_not_found for any wrong pair (also for members' orders: they log in), RateLimited.
    """
    ratelimit.hit(get_settings().order_lookup_rate_limit, "order-lookup", client)
    order_id = (
        Order.select(Order.id)
        .where(
            Order.order_number == order_number.strip().upper(),
            Order.user.is_null(),
            Order.guest_email == normalize_email(email),
        )
        .scalar()
    )
    if order_id is None:
        raise NotFound("order_not_found", "No guest order has this number and email.")
    return int(order_id), sign_order_token(int(order_id))
