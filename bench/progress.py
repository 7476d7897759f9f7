"""What `make bench` is doing during its minutes: the step, its index of N, and about how long is
left, estimated from the run's seconds/runs settings (printed to stderr, flushed)."""

from __future__ import annotations

import sys
import time


def wrk_seconds(seconds: float, runs: int) -> float:
    """One load.measure(): a short warm-up, then `runs` runs, plus wrk's start and stop each time."""
    return min(seconds, 2) + runs * seconds + (runs + 1) * 0.5


class Progress:
    """Steps planned in order with their estimated seconds; step(name) announces the next one."""

    def __init__(self, plan: list[tuple[str, float]]) -> None:
        self.plan = plan
        self.index = 0
        self.began = time.monotonic()

    def step(self, name: str) -> None:
        names = [planned for planned, _ in self.plan]
        if name in names[self.index :]:
            self.index = names.index(name, self.index)
        left = sum(estimate for _, estimate in self.plan[self.index :])
        elapsed = time.monotonic() - self.began
        print(
            f"[bench {self.index + 1}/{len(self.plan)}] {name} (elapsed {_clock(elapsed)}, about {_clock(left)} left)",
            file=sys.stderr,
            flush=True,
        )
        self.index += 1

    def done(self) -> None:
        print(f"[bench] done in {_clock(time.monotonic() - self.began)}", file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
