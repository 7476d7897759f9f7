"""The Celery application, configured from celeryconfig.py."""

from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging, worker_process_init

from models.infra.db import init_db
from models.infra.logs import setup_logging as _setup_logging
from models.infra.settings import get_settings
from tasks import metrics as _metrics  # noqa: F401  (counts each task run's outcome)
from tasks.typed import receiver

# Every module that defines tasks; the worker imports them at start.
TASK_MODULES: list[str] = ["tasks.pipeline", "tasks.shipping", "tasks.accounts"]

app = Celery("shop", include=TASK_MODULES, amqp="tasks.amqp:AMQP")
app.config_from_object("celeryconfig")


@receiver(setup_logging)
def _logging(**_: object) -> None:
    _setup_logging(get_settings().log_level)


@receiver(worker_process_init)
def _db(**_: object) -> None:
    # Each (forked) worker process binds its own connection pool.
    init_db()


def broker_reachable(timeout: float = 2.0) -> bool:
    """True when the broker accepts a connection within timeout seconds."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:
        return False
