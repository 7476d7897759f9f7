"""A cart that follows the customer: a signed-in customer has one cart, `cart:~u<user id>`, and every
session they shop from is attached to it.

A request carrying both an access token and X-Session-ID attaches the session: what the session's
cart holds is merged into the customer's cart (a product in both: the larger quantity, capped by
the stock and the line maximum, so a sold-out product in both leaves the cart; a product only in
the session's cart moves over as it is, while the cart has room for another line), and the session's hash keeps
only {"~owner": "~u<user id>"}, so every later read or write of that session id (with or without a
token) goes to the customer's cart (models/cart/store.py follows the pointer). Sessions never
attached stay exactly as they were.

The merge is one Lua script, so two devices logging in at once, or a tab adding while another logs
in, never lose a line: the script sees and writes both hashes atomically. The stock it caps by is
read just before (the catalogue lookup); the script refuses, naming the session's products, when
it lacks the stock of one (on the first run, or when the session's cart gained a product since),
and the caller looks them up and runs it again.

The session's pointer expires CART_TTL after its last use, as a cart does: each attach renews it
(the script's first step, in the one round trip an attached session costs), and so does a write
through the session (models/cart/store.py).
"""

from __future__ import annotations

import hashlib
import logging
import time

from redis.exceptions import NoScriptError

from models.cart.store import ACTIVITY_KEY, CUSTOMER_PREFIX, MAX_LINES, UNLIMITED, RowLookup, cart_key
from models.infra.redis_client import command
from models.infra.settings import get_settings

_ATTACH = """
local src, dst, activity = KEYS[1], KEYS[2], KEYS[3]
local owner, session = ARGV[1], ARGV[2]
local max_line, max_lines, ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if redis.call('HGET', src, '~owner') == owner then
  redis.call('EXPIRE', src, ttl)
  return 1
end
local available = {}
for i = 7, #ARGV, 2 do available[ARGV[i]] = tonumber(ARGV[i + 1]) end
local flat = redis.call('HGETALL', src)
local products, unknown = {}, false
for i = 1, #flat, 2 do
  local pid = flat[i]
  if string.sub(pid, 1, 1) ~= '~' then
    products[#products + 1] = pid
    if available[pid] == nil then unknown = true end
  end
end
if unknown then return products end
local lines = redis.call('HLEN', dst) - redis.call('HEXISTS', dst, '~updated')
local merged = 0
for i = 1, #flat, 2 do
  local pid = flat[i]
  if string.sub(pid, 1, 1) ~= '~' then
    local cur = tonumber(redis.call('HGET', dst, pid) or '0')
    local new = tonumber(flat[i + 1])
    if cur == 0 then
      if lines >= max_lines then new = 0 end
    else
      new = math.max(cur, new)
      if new > max_line then new = max_line end
      if available[pid] >= 0 and new > available[pid] then new = available[pid] end
    end
    if new ~= cur then
      if new > 0 then
        redis.call('HSET', dst, pid, new)
        if cur == 0 then lines = lines + 1 end
      else
        redis.call('HDEL', dst, pid)
        lines = lines - 1
      end
      merged = merged + 1
    end
  end
end
redis.call('DEL', src)
redis.call('HSET', src, '~owner', owner)
redis.call('EXPIRE', src, ttl)
redis.call('ZREM', activity, session)
if merged > 0 then
  if lines > 0 then
    redis.call('HSET', dst, '~updated', now)
    redis.call('EXPIRE', dst, ttl)
    redis.call('ZADD', activity, now, owner)
  else
    redis.call('DEL', dst)
    redis.call('ZREM', activity, owner)
  end
end
return 1
"""
log = logging.getLogger("shop.cart")
_ATTACH_SHA = hashlib.sha1(_ATTACH.encode()).hexdigest()
ATTEMPTS = 5


def customer_cart_id(user_id: int) -> str:
    """The cart id of a customer's cart (never a valid X-Session-ID: those have no '~')."""
    return f"{CUSTOMER_PREFIX}{user_id}"


async def attach(session_id: str, user_id: int, rows: RowLookup) -> str:
    """Attach the session to the customer, merging its cart into theirs; returns the customer's cart id.

    The script runs first with no stock figures: a session already attached to this customer has
    its pointer renewed, and an empty session is attached, in that one round trip; a session
    holding products answers their ids, and the script runs again with their stock."""
    owner = customer_cart_id(user_id)
    settings = get_settings()
    available: list[int | str] = []
    for _ in range(ATTEMPTS):
        keys_and_args = [
            3,
            cart_key(session_id),
            cart_key(owner),
            ACTIVITY_KEY,
            owner,
            session_id,
            settings.max_line_quantity,
            MAX_LINES,
            settings.cart_ttl,
            f"{time.time():.3f}",
            *available,
        ]
        try:
            done = await command("EVALSHA", _ATTACH_SHA, *keys_and_args)
        except NoScriptError:
            done = await command("EVAL", _ATTACH, *keys_and_args)
        if not isinstance(done, list):
            return owner
        # The session's products, whose stock caps the merge (asked again should it gain one meanwhile).
        product_ids = [int(pid) for pid in done]
        found = await rows(product_ids)
        available = []
        for product_id in product_ids:
            row = found.get(product_id)
            # No row: a product no longer sold, not capped (the cart hides it, checkout refuses it).
            stock = UNLIMITED if row is None or not row[7] else int(row[6])
            available += [product_id, stock]
    # The session kept gaining products between our reads (never seen in practice): serve the
    # customer's cart now and attach on their next request.
    log.warning("session not attached after %d attempts", ATTEMPTS, extra={"user_id": user_id})
    return owner
