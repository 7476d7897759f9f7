"""The cart store: one Redis hash per session, priced from the catalogue at read time.

Layout (all keys expire CART_TTL seconds after the cart's last write):
    cart:<cart id>      hash  {"<product_id>": "<quantity>", ..., "~updated": "<unix seconds>"}
    carts:activity      zset  cart id -> unix seconds of the cart's last write (the abandoned-cart sweep)
    cart-owner:<session> string  a signed-in customer's user id for a session cart (the abandoned-cart
                              reminder); CART_TTL after it was set
A cart id is the X-Session-ID of an anonymous cart, or `~u<user id>` for a customer's cart; a
session attached to a customer keeps only {"~owner": "~u<user id>"} (models/cart/owners.py).

Every write is one Lua script (one round trip, atomic): it re-reads the line, checks the per-line
maximum, the number of lines and the stock the caller looked up, writes, refreshes the TTL and the
activity score, and returns the cart's hash. Two tabs adding at once therefore never lose an item,
and the availability check is atomic with the write.

The web door's operations (read, add_item, set_quantity, remove_item) are coroutines on the async
Redis client (auto-pipelined, see models.redis_client.command), and take the catalogue lookup as a
RowLookup: the web door passes its per-process cache (web/catalog/cache.py), which drops a
product's row when PostgreSQL announces its stock changed, so stock shown in a cart, and checked
when adding, lags reservations by milliseconds (by up to CATALOG_CACHE_TTL seconds when the web
process is not listening). That is a display figure: reserving stock at checkout reads and locks
the database, so nothing can oversell. The sync functions serve the checkout and the beat jobs.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.exceptions import NoScriptError

from models.errors import Conflict, InvalidInput, NotFound, validation_error
from models.infra.db import db, prepared
from models.infra.redis_client import Script, command, get_redis
from models.infra.settings import get_settings

SESSION_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")
ACTIVITY_KEY = "carts:activity"  # a different prefix from cart:<session>, so no session id can collide
UPDATED_FIELD = "~updated"
# Set on a session's hash once the session is attached to a customer: the customer's cart id
# (models/cart/owners.py). Every read and write of the session then goes to that cart.
OWNER_FIELD = "~owner"
CUSTOMER_PREFIX = "~u"  # a customer's cart id: ~u<user id> (never an X-Session-ID, which has no '~')
MAX_LINES = 100  # distinct products in one cart
UNLIMITED = -1  # `available` for products that do not track inventory
MAX_PRODUCT_ID = 2**31 - 1  # products.id is a SERIAL

_WRITE = """
local cart, activity = KEYS[1], KEYS[2]
local pid, qty, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local available, max_line, max_lines = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl, now, session = tonumber(ARGV[7]), ARGV[8], ARGV[9]
local owner = redis.call('HGET', cart, '~owner')
if owner then
  redis.call('EXPIRE', cart, ttl)  -- the pointer lives as long as it is used
  return {-6, owner, {}}
end
local cur = tonumber(redis.call('HGET', cart, pid) or '0')
local new = qty
if mode == 'add' then new = cur + qty end
if mode == 'set' and cur == 0 and new > 0 then return {-4, cur, {}} end
if new > 0 and new > cur then
  if new > max_line then return {-2, cur, {}} end
  if available >= 0 and new > available then return {-1, cur, {}} end
  if cur == 0 then
    local lines = redis.call('HLEN', cart) - redis.call('HEXISTS', cart, '~updated')
    if lines >= max_lines then return {-3, cur, {}} end
  end
end
if new <= 0 then
  if cur == 0 then return {0, cur, redis.call('HGETALL', cart)} end
  redis.call('HDEL', cart, pid)
  if redis.call('HLEN', cart) - redis.call('HEXISTS', cart, '~updated') <= 0 then
    redis.call('DEL', cart)
    redis.call('ZREM', activity, session)
    return {0, cur, {}}
  end
else
  redis.call('HSET', cart, pid, new)
end
redis.call('HSET', cart, '~updated', now)
redis.call('EXPIRE', cart, ttl)
redis.call('ZADD', activity, now, session)
return {0, cur, redis.call('HGETALL', cart)}
"""


@dataclass(frozen=True)
class CartLine:
    product_id: int
    name: str
    slug: str
    sku: str
    image: str | None
    unit_price: int
    quantity: int
    subtotal: int
    in_stock: bool
    available_quantity: int | None  # None: the product does not track inventory


@dataclass(frozen=True)
class Cart:
    session_id: str
    lines: list[CartLine]
    updated_at: datetime | None

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)


def validate_session_id(raw: str | None) -> str:
    """The X-Session-ID header, checked; raises InvalidInput invalid_session."""
    if raw is None or not SESSION_RE.fullmatch(raw):
        raise InvalidInput("invalid_session", "Send X-Session-ID: 8-128 characters of A-Z, a-z, 0-9, '_' or '-'.")
    return raw


def cart_key(session_id: str) -> str:
    return f"cart:{session_id}"


def _quantities(raw: dict[str, str]) -> dict[int, int]:
    return {int(k): int(v) for k, v in raw.items() if k.isdigit() and int(v) > 0}


# The client decodes replies (decode_responses=True), but redis-py types every reply bytes | str
# whatever the client: these two say what the replies are.
def _hget(key: str, field: str) -> str | None:
    return cast("str | None", get_redis().hget(key, field))


def _hgetall(key: str) -> dict[str, str]:
    return cast("dict[str, str]", get_redis().hgetall(key))


def resolve(cart_id: str) -> str:
    """The cart a cart id's requests use: the customer's for a session attached to one, else itself."""
    owner = _hget(cart_key(cart_id), OWNER_FIELD)
    return owner or cart_id


def get_quantities(cart_id: str) -> dict[int, int]:
    """product_id -> quantity of the cart (empty when unknown); one Redis round trip, two for a session
    attached to a customer (whose cart it then reads)."""
    raw = _hgetall(cart_key(cart_id))
    owner = raw.get(OWNER_FIELD)
    return _quantities(_hgetall(cart_key(owner)) if owner else raw)


def clear(cart_id: str) -> None:
    """Forget the cart and its activity record (DELETE /cart); for a session attached to a customer,
    the customer's cart (the session stays attached)."""
    owner = _hget(cart_key(cart_id), OWNER_FIELD)
    target = owner or cart_id
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(cart_key(target))
    pipe.zrem(ACTIVITY_KEY, target)
    pipe.execute()


# The session an order came from may have been attached to a customer since (a guest who signed in
# before the capture): its lines are then in the customer's cart, which the session points to. That
# cart's key is only known once the script has read the pointer, so the script names it itself
# rather than taking it from KEYS: one Redis (the shop's is also the Celery broker, never a
# cluster), and following the pointer atomically, in the round trip that announces the payment,
# spares a second round trip and a race with a login.
_REMOVE_ORDERED = """
local cart, activity, marker = KEYS[1], KEYS[2], KEYS[3]
local session, ttl = ARGV[1], tonumber(ARGV[2])
local owner = redis.call('HGET', cart, '~owner')
if owner then
  cart, session = 'cart:' .. owner, owner  -- cart_key(owner)
end
if redis.call('SET', marker, '1', 'NX', 'EX', ttl) == false then return 0 end
for i = 3, #ARGV, 2 do
  local pid, qty = ARGV[i], tonumber(ARGV[i + 1])
  local left = tonumber(redis.call('HGET', cart, pid) or '0') - qty
  if left > 0 then redis.call('HSET', cart, pid, left) else redis.call('HDEL', cart, pid) end
end
if redis.call('HLEN', cart) - redis.call('HEXISTS', cart, '~updated') <= 0 then
  redis.call('DEL', cart)
  redis.call('ZREM', activity, session)
end
return 1
"""


def remove_ordered(order_number: str | int, session_id: str, lines: dict[int, int]) -> bool:
    """Take what an order bought out of the cart it came from, once per order: lines added to the
    session since checkout stay. A session attached to a customer since checkout points to the
    customer's cart, which the lines moved to: they are taken from there. Returns False when this
    order's lines were already removed.

    The marker that makes it once (`cart-ordered:<order number>`, kept as long as a cart) is named
    by the order's number, which is never given out twice: an order id can be, by a database
    restored from a backup while Redis kept its markers. (An int: a message queued before the
    number was sent, whose marker was named by the order's id.)"""
    script, keys, args = remove_ordered_script(order_number, session_id, lines)
    return bool(get_redis().eval(script, len(keys), *keys, *args))


def remove_ordered_script(order_number: str | int, session_id: str, lines: dict[int, int]) -> Script:
    """remove_ordered() as a script to run in another round trip (the dispatcher's, which closes
    the order's fences and announces it right after: tasks/dispatch.py); its reply is remove_ordered's."""
    args: list[int | str] = [session_id, get_settings().cart_ttl]
    for product_id, quantity in sorted(lines.items()):
        args += [product_id, quantity]
    return Script(_REMOVE_ORDERED, [cart_key(session_id), ACTIVITY_KEY, f"cart-ordered:{order_number}"], args)


def abandoned_sessions(older_than_seconds: int, limit: int = 1000) -> list[str]:
    """Sessions whose non-empty cart has not been written for older_than_seconds, oldest first."""
    r = get_redis()
    now = time.time()
    # Entries older than CART_TTL belong to carts Redis has already expired.
    r.zremrangebyscore(ACTIVITY_KEY, "-inf", f"({now - get_settings().cart_ttl}")
    candidates = cast(
        "list[str]", r.zrangebyscore(ACTIVITY_KEY, "-inf", now - older_than_seconds, start=0, num=limit)
    )  # decoded: see _hget
    if not candidates:
        return []
    pipe = r.pipeline(transaction=False)
    for session in candidates:
        pipe.exists(cart_key(session))
    alive = pipe.execute()
    gone = [s for s, exists in zip(candidates, alive, strict=True) if not exists]
    if gone:
        r.zrem(ACTIVITY_KEY, *gone)
    return [s for s, exists in zip(candidates, alive, strict=True) if exists]


def forget_activity(session_ids: list[str]) -> None:
    """Drop sessions from the abandoned-cart index (the sweep handled them); a later write re-adds them."""
    if session_ids:
        get_redis().zrem(ACTIVITY_KEY, *session_ids)


def owner_key(session_id: str) -> str:
    return f"cart-owner:{session_id}"


def set_owner(session_id: str, user_id: int) -> None:
    """Record which signed-in customer a cart belongs to (kept as long as an idle cart is)."""
    get_redis().set(owner_key(session_id), user_id, ex=get_settings().cart_ttl)


def owners(session_ids: list[str]) -> dict[str, int]:
    """cart id -> user id, for the carts among session_ids that belong to a signed-in customer: a
    customer's own cart (`~u<user id>`), or a session cart recorded by set_owner."""
    found = {c: int(c[2:]) for c in session_ids if c.startswith(CUSTOMER_PREFIX) and c[2:].isdigit()}
    sessions = [s for s in session_ids if s not in found]
    if sessions:
        values = get_redis().mget([owner_key(s) for s in sessions])
        found.update({s: int(v) for s, v in zip(sessions, values, strict=True) if v is not None and str(v).isdigit()})
    return found


def last_write(cart_id: str) -> float | None:
    """Unix time of the cart's last write as the cart itself records it (it outlives the activity
    index, which the abandoned-cart sweep empties); None for an empty or unknown cart."""
    updated = get_redis().hget(cart_key(cart_id), UPDATED_FIELD)
    return float(updated) if updated else None


def last_activity(session_id: str) -> float | None:
    """Unix time of the cart's last write, or None for an empty or unknown cart."""
    return get_redis().zscore(ACTIVITY_KEY, session_id)


PricingRow = tuple[Any, ...]  # (id, name, slug, sku, images, price, stock_quantity, track_inventory)
# Finds the pricing rows of published products by id (the web door serves them from its cache).
RowLookup = Callable[[list[int]], Awaitable[Mapping[int, PricingRow]]]


# One statement for any number of ids, prepared once per connection (models/infra/db.py).
_PRICING_ROWS = prepared(
    "SELECT id, name, slug, sku, images, price, stock_quantity, track_inventory FROM products "
    "WHERE id = ANY(%s) AND is_published"
)


def pricing_rows(product_ids: list[int]) -> dict[int, PricingRow]:
    """The catalogue rows that price cart lines, of the published products among product_ids: one query."""
    ids = [pid for pid in product_ids if 0 < pid <= MAX_PRODUCT_ID]
    if not ids:
        return {}
    rows = db.obj.execute_sql(_PRICING_ROWS, (ids,)).fetchall()
    return {row[0]: row for row in rows}


async def _stock(product_id: int, rows: RowLookup) -> int:
    """Units a cart may hold of a published product (UNLIMITED without tracking); raises NotFound."""
    row = (await rows([product_id])).get(product_id)
    if row is None:
        raise NotFound("product_not_found", "No such product.", product_id=product_id)
    stock, tracked = row[6], row[7]
    return int(stock) if tracked else UNLIMITED


_WRITE_SHA = hashlib.sha1(_WRITE.encode()).hexdigest()


async def _write(session_id: str, product_id: int, quantity: int, mode: str, available: int) -> dict[str, str]:
    settings = get_settings()
    keys_and_args = [
        2,
        cart_key(session_id),
        ACTIVITY_KEY,
        product_id,
        quantity,
        mode,
        available,
        settings.max_line_quantity,
        MAX_LINES,
        settings.cart_ttl,
        f"{time.time():.3f}",
        session_id,
    ]
    try:
        status, current, flat = await command("EVALSHA", _WRITE_SHA, *keys_and_args)
    except NoScriptError:  # a server that has not seen the script yet: EVAL runs it and keeps it
        status, current, flat = await command("EVAL", _WRITE, *keys_and_args)
    if status == -1:
        raise Conflict(
            "insufficient_stock",
            "The cart would hold more than is available.",
            product_id=product_id,
            available=available,
            in_cart=int(current),
        )
    if status == -2:
        raise validation_error(
            {
                "quantity": f"A cart line holds at most {settings.max_line_quantity} units "
                f"({current} already in the cart)."
            }
        )
    if status == -3:
        raise validation_error({"product_id": f"A cart holds at most {MAX_LINES} different products."})
    if status == -4:
        raise NotFound("cart_item_not_found", "This product is not in the cart.", product_id=product_id)
    if status == -6:  # a session attached to a customer: its cart is the customer's (models/cart/owners.py)
        return await _write(str(current), product_id, quantity, mode, available)
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def add_item(session_id: str, product_id: int, quantity: int, rows: RowLookup) -> Cart:
    """Add units of a published product; raises NotFound product_not_found, Conflict insufficient_stock,
    InvalidInput validation_error (line or cart too large)."""
    if quantity < 1:
        raise validation_error({"quantity": "Must be at least 1."})
    available = await _stock(product_id, rows)
    return await _priced(session_id, await _write(session_id, product_id, quantity, "add", available), rows)


async def set_quantity(session_id: str, product_id: int, quantity: int, rows: RowLookup) -> Cart:
    """Set a line's quantity (0 removes it); raises NotFound cart_item_not_found / product_not_found,
    Conflict insufficient_stock, InvalidInput validation_error."""
    if quantity < 0:
        raise validation_error({"quantity": "Must not be negative."})
    available = await _stock(product_id, rows) if quantity > 0 else UNLIMITED
    return await _priced(session_id, await _write(session_id, product_id, quantity, "set", available), rows)


async def remove_item(session_id: str, product_id: int, rows: RowLookup) -> Cart:
    """Remove a line (a no-op when absent) and return the cart."""
    return await _priced(session_id, await _write(session_id, product_id, 0, "remove", UNLIMITED), rows)


async def read(cart_id: str, rows: RowLookup) -> Cart:
    """The cart priced at the catalogue's prices: one Redis round trip (two for a session attached to
    a customer), plus the lookup of its rows.

    Lines whose product was deleted or unpublished are left out."""
    raw = await command("HGETALL", cart_key(cart_id))
    owner = raw.get(OWNER_FIELD)
    if owner:
        return await _priced(owner, await command("HGETALL", cart_key(owner)), rows)
    return await _priced(cart_id, raw, rows)


async def _priced(session_id: str, raw: dict[str, str], rows: RowLookup) -> Cart:
    quantities = _quantities(raw)
    updated = raw.get(UPDATED_FIELD)
    updated_at = datetime.fromtimestamp(float(updated), UTC) if updated else None
    if not quantities:
        return Cart(session_id, [], updated_at)
    by_id = await rows(list(quantities))
    lines = []
    for product_id, quantity in quantities.items():  # insertion order while Redis keeps a small hash as a listpack
        row = by_id.get(product_id)
        if row is None:
            continue
        _, name, slug, sku, images, price, stock, tracked = row
        available = int(stock) if tracked else None
        lines.append(
            CartLine(
                product_id,
                name,
                slug,
                sku,
                images[0] if images else None,
                int(price),
                quantity,
                int(price) * quantity,
                available is None or available >= quantity,
                available,
            )
        )
    return Cart(session_id, lines, updated_at)
