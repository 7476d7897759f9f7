"""Celery's decorators, typed. Celery ships no type information, so `@app.task(...)` and
`@signal.connect` would make every task and receiver untyped to mypy (and lose their signatures).
These do exactly what the decorators do (same calls, same returned objects) and keep the types:
`task`/`bound_task` for tasks (tasks/app.py binds them to the app), `receiver` for signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

from celery import Celery, Task
from celery.utils.dispatch import Signal

P = ParamSpec("P")
R = TypeVar("R", covariant=True)
Receiver = TypeVar("Receiver", bound=Callable[..., None])


class TaskFunction(Protocol[P, R]):
    """A Celery task as its callers see it: called in-process like its function, or sent to a worker."""

    name: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Any: ...  # an AsyncResult

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...  # an AsyncResult


def task(app: Celery, **options: Any) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """`@app.task(**options)`."""

    def register(function: Callable[P, R]) -> TaskFunction[P, R]:
        return cast("TaskFunction[P, R]", app.task(**options)(function))

    return register


def bound_task(app: Celery, **options: Any) -> Callable[[Callable[Concatenate[Task, P], R]], TaskFunction[P, R]]:
    """`@app.task(bind=True, **options)`: the function receives its task (self) first."""

    def register(function: Callable[Concatenate[Task, P], R]) -> TaskFunction[P, R]:
        return cast("TaskFunction[P, R]", app.task(bind=True, **options)(function))

    return register


def receiver(signal: Signal) -> Callable[[Receiver], Receiver]:
    """`@signal.connect`: connects the function and returns it unchanged, as Celery's does."""

    def connect(function: Receiver) -> Receiver:
        signal.connect(function)
        return function

    return connect
