"""Failpoints: named places where a test can make this process crash or fail, once.

Only active when FAILPOINTS=1 (tests). A test arms one with `arm(name, action)`; the next process
that reaches `hit(name)` consumes it, so a redelivered task runs on normally.
    actions: "raise" (RuntimeError), "kill" (SIGKILL this process), "kill_worker" (SIGKILL the
    Celery parent process too, as if the whole worker machine died), "hold" (wait, at most
    HOLD_LIMIT seconds, until the test calls `release(name)`: `held(name)` tells it we got there).
"""

from __future__ import annotations

import os
import signal

from models.infra.redis_client import get_redis
from models.infra.settings import get_settings

KEY = "failpoints"
HOLD_LIMIT = 30
_TAKE = """
local action = redis.call('HGET', KEYS[1], ARGV[1])
if action then redis.call('HDEL', KEYS[1], ARGV[1]) end
return action
"""


class InjectedFailure(RuntimeError):
    """Raised by a failpoint armed with the "raise" action."""


def arm(name: str, action: str = "raise") -> None:
    get_redis().hset(KEY, name, action)


def held(name: str) -> bool:
    """True once a process is waiting at this "hold" failpoint."""
    return bool(get_redis().exists(f"{KEY}:held:{name}"))


def release(name: str) -> None:
    get_redis().lpush(f"{KEY}:release:{name}", 1)


def hit(name: str) -> None:
    if not get_settings().failpoints:
        return
    action = get_redis().eval(_TAKE, 1, KEY, name)
    if not action:
        return
    if action == "hold":
        redis = get_redis()
        redis.set(f"{KEY}:held:{name}", 1, ex=HOLD_LIMIT)
        redis.blpop([f"{KEY}:release:{name}"], timeout=HOLD_LIMIT)
        redis.delete(f"{KEY}:held:{name}")
        return
    if action == "raise":
        raise InjectedFailure(f"failpoint {name}")
    if action == "kill_worker":
        os.kill(os.getppid(), signal.SIGKILL)
    if action in {"kill", "kill_worker"}:
        os.kill(os.getpid(), signal.SIGKILL)
