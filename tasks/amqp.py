"""Celery's message factory, with the task's shadow name in its task-sent event too.

The dispatcher names each pipeline task "<task> <order number>" (its shadow name, what Flower and
the worker's logs show). Celery puts that name in the task-received/started/succeeded events but
the bare task name in task-sent, and Flower lets a task-sent event that arrives last (the
publisher sends it after the message itself, so a quick worker can finish first) overwrite the
name. With the shadow name in both, Flower shows the order number whatever the arrival order."""

from __future__ import annotations

from typing import Any

from celery.app.amqp import AMQP as CeleryAMQP


class AMQP(CeleryAMQP):  # type: ignore[misc]
    def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        message = super().as_task_v2(task_id, name, *args, **kwargs)
        shadow = message.headers.get("shadow")  # passed by position or by name
        if shadow and message.sent_event is not None:
            message.sent_event["name"] = shadow
        return message
