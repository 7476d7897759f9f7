"""Login attempts, counted before the password is checked: one Redis script decides and records.

Every attempt takes a slot in two moving windows (LOGIN_RATE_LIMIT each) before bcrypt runs: the
client address's and the account's. Checking and recording in one atomic step is what stops a
burst of concurrent guesses: the eleventh of sixty sent at once already finds ten slots taken,
even though none of the ten has been answered yet. A correct password gives its slots back, so
the windows hold failures and attempts still in flight.

The account's window is a lock against guessing one account from many addresses, but it must not
lock the owner out: an address that has no attempt in its own window (no failures, nothing in
flight) is let through to the password check even when the account's window is full. An attacker
who spreads guesses over many addresses therefore gets one guess per fresh address per window;
that is the price of never locking the owner out (README "Security").
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from functools import lru_cache

from limits import parse

from models.errors import RateLimited
from models.infra.redis_client import get_redis
from models.infra.settings import get_settings

# The `limits` library's prefix: ratelimit.reset() (operators unblocking a customer) clears these too.
PREFIX = "LIMITS:login-guard"

# KEYS: the address's window, the account's window. ARGV: window (ms), limit, slot name.
# Returns {0, 0} when the slot was taken, else {1 (address) | 2 (account), ms until a slot frees}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local function full(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then return nil, count end
  local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return math.max(1, tonumber(freeing[2]) + window - now), count
end
local address_wait, by_address = full(KEYS[1])
if address_wait then return {1, address_wait} end
local account_wait = full(KEYS[2])
if account_wait and by_address > 0 then return {2, account_wait} end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return {0, 0}
"""


@dataclass(frozen=True)
class Attempt:
    """A slot held in both windows while the password is checked."""

    keys: tuple[str, str]
    slot: str


def keys_for(address: str, email: str) -> tuple[str, str]:
    return f"{PREFIX}:address:{address}", f"{PREFIX}:account:{email}"


@lru_cache(maxsize=8)
def _window(spec: str) -> tuple[int, int]:
    """(limit, window in ms) of a spec such as '10/minute'."""
    item = parse(spec)
    return item.amount, item.get_expiry() * 1000


def begin(address: str, email: str) -> Attempt:
    """Take a slot for one attempt before the password is checked; raises RateLimited."""
    limit, window_ms = _window(get_settings().login_rate_limit)
    keys = keys_for(address, email)
    slot = secrets.token_hex(8)
    refused, wait_ms = get_redis().eval(_RESERVE, 2, *keys, window_ms, limit, slot)
    if refused:
        raise RateLimited(max(1, math.ceil(int(wait_ms) / 1000)))
    return Attempt(keys, slot)


def succeeded(attempt: Attempt) -> None:
    """The password was right: the attempt is not a failure, give its slots back."""
    pipe = get_redis().pipeline(transaction=False)
    for key in attempt.keys:
        pipe.zrem(key, attempt.slot)
    pipe.execute()


def held(address: str, email: str) -> tuple[int, int]:
    """How many slots the address and the account hold now (failures and attempts in flight)."""
    pipe = get_redis().pipeline(transaction=False)
    for key in keys_for(address, email):
        pipe.zcard(key)
    by_address, by_account = pipe.execute()
    return int(by_address), int(by_account)
