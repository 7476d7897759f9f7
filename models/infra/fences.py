"""Change fences: how a reader that keeps copies of rows (the web's order-status copies) knows,
with one Redis read and no query, whether a copy may be out of date.

A fence is a counter in Redis per row ("order:42"), with a count of writers in flight beside it:
- a writer opens the fence inside its transaction, before it commits (`open`): the counter moves
  and the in-flight count goes up (it expires after PENDING_TTL, should the writer die);
- once the transaction has ended, committed or rolled back, the writer closes it (`close`);
- a reader (`read`) gets each fence's counter and in-flight count. While a writer is in flight it
  reads PostgreSQL and keeps nothing. Otherwise a copy it read under the same counter is current:
  any commit since would have moved the counter first; and a copy it reads now it may keep under
  the counter it saw before reading.

So a reader never serves a change later than its commit, nor a copy of a state that a commit has
replaced. Writing a fence is not best effort: a writer that cannot reach Redis fails (its
transaction rolls back and is retried), as writing the broker would. A fence missing from Redis
(evicted, expired, never written) is created by the reader with a random counter, so a copy kept
under an earlier counter cannot match it by chance.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from models.infra.redis_client import Script, command, get_redis

PENDING_TTL = 30  # seconds a dead writer's in-flight mark outlives it
FENCE_TTL = 7 * 24 * 3600  # an idle fence goes after a week; a reader makes a new one when needed
PENDING = ":w"

# KEYS: fence, in-flight count. ARGV: seed, PENDING_TTL, FENCE_TTL. Returns the new counter.
_OPEN = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local counter = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return counter
"""
# KEYS: in-flight counts.
_CLOSE = """
for _, key in ipairs(KEYS) do
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
"""
# KEYS: fence, in-flight count, fence, in-flight count, ... ARGV: seed, FENCE_TTL.
# Returns counter, in-flight count, ... (a missing fence is created with the seed).
_READ = """
local out = {}
for i = 1, #KEYS, 2 do
  local value = redis.call('GET', KEYS[i])
  if not value then
    value = ARGV[1]
    redis.call('SET', KEYS[i], value, 'EX', ARGV[2])
  end
  out[#out + 1] = value
  out[#out + 1] = redis.call('GET', KEYS[i + 1]) or '0'
end
return out
"""
_sha: dict[str, str] = {}
_random = random.Random()  # seeded from the OS once; a seed need not be secret, only unlikely to repeat


def _seed() -> str:
    return str(_random.getrandbits(48))


OPEN_ATTEMPTS = 5  # over about 1.5 s: a Redis that is restarting (the supervisor's, a failover) is waited for


def open(key: str) -> str:  # noqa: A001  (the fence's verb)
    """Open key's fence: call inside the writer's transaction, before it commits; returns the
    counter it moved the fence to (as `read` reports counters). While the fence still shows that
    counter once the transaction committed and the fence closed, no write has committed since:
    the row as this transaction wrote it is current. Raises redis.RedisError when Redis cannot be
    reached for OPEN_ATTEMPTS tries (the writer's transaction must not commit). Waiting out a
    restart matters: a task that fails here retries through the broker, which is down too, and
    Celery rejects a task whose retry it cannot publish."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return str(get_redis().eval(_OPEN, 2, key, key + PENDING, _seed(), PENDING_TTL, FENCE_TTL))
        except (redis.ConnectionError, redis.TimeoutError):
            if attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def close(keys: Sequence[str], then: Sequence[tuple[str, str]] = (), first: Sequence[Script] = ()) -> list[Any]:
    """Run the `first` scripts, close the fences opened for a transaction that has ended, then
    publish `then` (channel, message) pairs: one round trip, in that order, so a reader woken by
    the message sees what the scripts did. Returns the scripts' replies (a script that failed: its
    error, not raised). Raises redis.RedisError when the round trip fails. Best effort: a fence
    left open only sends readers to PostgreSQL until PENDING_TTL passes."""
    pipe = get_redis().pipeline(transaction=False)
    for script in first:
        pipe.eval(script.source, len(script.keys), *script.keys, *script.args)
    if keys:
        pipe.eval(_CLOSE, len(keys), *[key + PENDING for key in keys])
    for channel, message in then:
        pipe.publish(channel, message)
    replies = pipe.execute(raise_on_error=False)
    for reply in replies[len(first) :]:
        if isinstance(reply, Exception):
            raise reply
    return list(replies[: len(first)])


@contextmanager
def writing(key: str) -> Iterator[None]:
    """Open key's fence around a write that commits inside the block (a statement in autocommit,
    or a whole `db.atomic()`), and close it after."""
    open(key)
    try:
        yield
    finally:
        close([key])


async def read(keys: Sequence[str]) -> list[tuple[str, bool]]:
    """(counter, writer in flight) for each fence, in one round trip from the web's event loop
    (models.infra.redis_client.command, no threadpool hop). Raises redis.RedisError."""
    args: list[Any] = [len(keys) * 2]
    for key in keys:
        args += [key, key + PENDING]
    args += [_seed(), FENCE_TTL]
    sha = _sha.get(_READ)
    reply: list[str]
    if sha is not None:
        try:
            reply = await command("EVALSHA", sha, *args)
        except Exception as exc:  # NOSCRIPT: Redis restarted and forgot the script
            if "NOSCRIPT" not in str(exc):
                raise
            reply = await command("EVAL", _READ, *args)
    else:
        reply = await command("EVAL", _READ, *args)
        _sha[_READ] = await command("SCRIPT", "LOAD", _READ)
    return [(reply[i], reply[i + 1] != "0") for i in range(0, len(reply), 2)]
