"""Failpoints: named places where a test can make this process crash or fail, once.

Only active when FAILPOINTS=1 (tests). A test arms one with `arm(name, action)`; the next process
that reaches `hit(name)` consumes it, so a redelivered task runs on normally.
    actions: "raise" (RuntimeError), "kill" (SIGKILL this process), "kill_worker" (SIGKILL the
    Celery parent process too, as if the whole worker machine died).
"""

from __future__ import annotations

import os
import signal

from models.infra.redis_client import get_redis
from models.infra.settings import get_settings

KEY = "failpoints"
_TAKE = """
local action = redis.call('HGET', KEYS[1], ARGV[1])
if action then redis.call('HDEL', KEYS[1], ARGV[1]) end
return action
"""


class InjectedFailure(RuntimeError):
    """Raised by a failpoint armed with the "raise" action."""


def arm(name: str, action: str = "raise") -> None:
    get_redis().hset(KEY, name, action)


def hit(name: str) -> None:
    if not get_settings().failpoints:
        return
    action = get_redis().eval(_TAKE, 1, KEY, name)
    if not action:
        return
    if action == "raise":
        raise InjectedFailure(f"failpoint {name}")
    if action == "kill_worker":
        os.kill(os.getppid(), signal.SIGKILL)
    if action in {"kill", "kill_worker"}:
        os.kill(os.getpid(), signal.SIGKILL)
