"""Placing an order from a cart, for a member or a guest: price on the server, snapshot the items,
answer `pending`."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models import events
from models.cart import store as cart_store
from models.errors import InvalidInput, NotFound, validation_error
from models.events import FenceOpened, OrderChanged, ReserveStock
from models.infra import fences
from models.infra.db import db, insert, prepared
from models.infra.settings import get_settings
from models.orders.guests import Guest, normalize_email
from models.orders.quote import price_cart
from models.orders.states import PENDING, PaymentStatus, announcement, fence_key, record, remember_number
from models.payments.registry import enabled_gateways
from models.tables import Address, IdempotencyKey, Order, User, utcnow

ADDRESS_FIELDS = ("recipient_name", "phone", "postal_code", "address_line1", "address_line2", "city")


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool


# Every checkout's statements, prepared once per connection (models/infra/db.py): peewee would
# build their SQL in Python on every call. A checkout with an Idempotency-Key claims it first; a
# row already there (no id returned) is another request's. Once the order is in, the claim names it.
_CLAIM_KEY = prepared(
    'INSERT INTO "idempotency_keys" ("user_id", "key", "request_hash", "created_at") '
    'VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING "id"'
)
_KEY_ORDER = prepared('UPDATE "idempotency_keys" SET "order_id" = %s WHERE "id" = %s')
# The order's lines, any number of them, in one statement: one array per column, in the cart's order.
_LINES = prepared(
    'INSERT INTO "order_items" ("order_id", "product_id", "product_name", "product_sku", "product_image", '
    '"unit_price", "quantity", "subtotal") '
    "SELECT %s, l.product_id, l.name, l.sku, l.image, l.price, l.quantity, l.subtotal "
    "FROM unnest(%s::integer[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::integer[], %s::bigint[]) "
    "WITH ORDINALITY AS l(product_id, name, sku, image, price, quantity, subtotal, position) ORDER BY l.position"
)


def new_order_number() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    suffix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"ORD-{datetime.now(UTC):%Y%m%d}-{suffix}"


def request_hash(body: dict[str, Any], session_id: str) -> str:
    canonical = json.dumps({"body": body, "session": session_id}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _shipping_address(customer: User | Guest, address: dict[str, Any] | None, address_id: int | None) -> dict[str, Any]:
    if address_id is not None:
        owner = customer.id if isinstance(customer, User) else None
        row = Address.get_or_none(Address.id == address_id, Address.user == owner) if owner else None
        if row is None:
            raise NotFound("address_not_found", "No such address.", address_id=address_id)
        return {name: getattr(row, name) for name in ADDRESS_FIELDS}
    if address is None:
        raise validation_error({"shipping_address": "Give shipping_address or address_id."})
    return {name: address.get(name) for name in ADDRESS_FIELDS}


def _key_scope(customer: User | Guest, session_id: str, key: str) -> tuple[int | None, str]:
    """(user id, stored key): a member's keys are theirs; a guest has no account, so a guest's key
    is scoped by the cart's session (hashed, to fit the column)."""
    if isinstance(customer, User):
        return customer.id, key
    return None, "guest:" + hashlib.sha256(f"{session_id}\n{key}".encode()).hexdigest()


def _customer_columns(customer: User | Guest) -> dict[str, Any]:
    if isinstance(customer, User):
        return {"user": customer.id}
    return {
        "user": None,
        "guest_email": normalize_email(customer.email),
        "guest_phone": customer.phone,
        "guest_name": customer.full_name,
    }


def place_order(customer: User | Guest, session_id: str, body: dict[str, Any], idempotency_key: str | None) -> Placed:
    """Create a pending order from the cart session_id names (a session, or a customer's cart id:
    models/cart/owners.py), for a member or a guest; the same Idempotency-Key and body return the
    same order.

    The cart is priced by models.orders.quote.price_cart, as POST /cart/quote prices it.
    Raises InvalidInput empty_cart / idempotency_key_reused / validation_error, DiscountRefused
    discount_invalid / discount_expired / discount_exhausted / discount_min_subtotal, NotFound
    address_not_found, Conflict product_unavailable / insufficient_stock.
    """
    enabled = enabled_gateways()
    if body["payment_method"] not in enabled:
        offered = ", ".join(enabled) or "none"
        raise validation_error(
            {"payment_method": f"Not enabled on this shop; enabled: {offered}."},
            f"Payment method {body['payment_method']} is not enabled on this shop; enabled: {offered}.",
        )
    session_id = cart_store.resolve(session_id)  # the cart the order comes from, and is taken out of once paid
    digest = request_hash(body, session_id)
    with db.atomic():
        if idempotency_key:
            owner, key = _key_scope(customer, session_id, idempotency_key)
            claimed = db.obj.execute_sql(_CLAIM_KEY, (owner, key, digest, utcnow())).fetchone()
            if claimed is None:
                # Another request with this key committed first (or is committing: the unique
                # index made us wait for it): answer with its order.
                existing = IdempotencyKey.get(_key_is(owner, key))
                if existing.request_hash != digest:
                    raise InvalidInput(
                        "idempotency_key_reused", "This Idempotency-Key was used with a different request."
                    )
                order = Order.get_by_id(existing.order_id)
                if order.status == PENDING:
                    # A retry, maybe of a request whose answer (and publish) a failure cut short:
                    # ask again (reserve_stock does nothing for an order no longer pending).
                    events.emit(ReserveStock(order.id))
                return Placed(order, created=False)
        member = customer.id if isinstance(customer, User) else None
        priced = price_cart(session_id, body["shipping_method"], body.get("discount_code"), member)
        lines, totals = priced.lines, priced.totals
        address = _shipping_address(customer, body.get("shipping_address"), body.get("address_id"))
        order = insert(  # by a statement built once (models/infra/db.py): every checkout makes one
            Order(
                order_number=new_order_number(),
                **_customer_columns(customer),
                status=PENDING,
                payment_status=PaymentStatus.PENDING,
                currency=get_settings().currency,
                subtotal=totals.subtotal,
                shipping_fee=totals.shipping_fee,
                discount_amount=totals.discount_amount,
                total=totals.total,
                shipping_address=address,
                shipping_method=body["shipping_method"],
                discount_code=totals.discount_code,
                discount=totals.discount_id,
                payment_method=body["payment_method"],
                payment_gateway=body["payment_method"],
                session_id=session_id,
            )
        )
        # The lines and the key's order need no answer: they go with the event and the COMMIT.
        columns = (
            [p.id for p, _ in lines],
            [p.name for p, _ in lines],
            [p.sku for p, _ in lines],
            [(p.images or [None])[0] for p, _ in lines],
            [p.price for p, _ in lines],
            [q for _, q in lines],
            [p.price * q for p, q in lines],
        )
        db.obj.write_later(_LINES, (order.id, *columns))
        if idempotency_key:
            db.obj.write_later(_KEY_ORDER, (order.id, claimed[0]))
        # A new order's fence moves too, as every write's does: a copy of "no such order" that a
        # web process kept is not served after this commit, and the announcement carries the row.
        fence = fence_key(order.id)
        counter = fences.open(fence)
        events.emit(FenceOpened(fence))
        record(
            order,
            "order_created",
            {
                "items": len(lines),
                "total": totals.total,
                "guest": order.user_id is None,
                "idempotency_key": idempotency_key,
            },
            to_status=PENDING,
        )
    remember_number(order)  # the dispatcher labels reserve_stock with it
    events.emit(ReserveStock(order.id), OrderChanged(order.id, announcement(order, counter)))
    return Placed(order, created=True)


def _key_is(owner: int | None, key: str) -> Any:
    user = IdempotencyKey.user.is_null() if owner is None else IdempotencyKey.user == owner
    return user & (IdempotencyKey.key == key)
