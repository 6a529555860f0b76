"""The distributed engine: Celery over a Redis broker (Debian's ``redis-server``, AOF on).

The queue is Celery's; this module only configures it and names the Redis keys the fleet keeps
beside it (job records, worker adverts, bundles). Celery settings that make a job survive a
dead worker or a broker restart:

* ``task_acks_late``: a message is acknowledged only when its job has ended, so a worker
  that dies holding one leaves it unacknowledged; Redis gives it back after the
  ``visibility_timeout``;
* ``worker_prefetch_multiplier=1``: a worker holds no more messages than it runs;
* the broker's own persistence (``appendonly yes``) keeps queued messages over a restart.

A worker that dies *while running* a job is detected sooner by its lease (``ledger``): the
heartbeat stops, the lease key expires, and a live worker or coordinator re-sends the job.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from testbed._errors import TestbedError

if TYPE_CHECKING:
    import redis
    from celery import Celery

#: the broker unless ``--broker`` says otherwise
DEFAULT_BROKER = os.environ.get("TESTBED_BROKER", "redis://127.0.0.1:6379/0")
TASK = "testbed.fleet.run_job"
PREFIX = "testbed:fleet:"
#: seconds after which Redis hands an unacknowledged message to another consumer
DEFAULT_VISIBILITY = 3600.0


class FleetError(TestbedError):
    """The broker cannot be reached, a job cannot be placed, a bundle is damaged."""


class FleetInputError(FleetError):
    """A user mistake: a bad matrix file, a constraint no worker meets (exit 2)."""

    exit_code = 2


def key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def queue_name(provider: str, route: str | None, exit: str | None) -> str:
    """The Celery queue of jobs needing ``provider`` with ``route``/``exit`` (None: any)."""
    return f"fleet.{provider}.{route or 'any'}.{exit or 'any'}"


def connect(url: str) -> redis.Redis:
    """A Redis client for ``url``, checked with a PING."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30,
                                      health_check_interval=10)
        client.ping()
    except (redis.RedisError, ValueError) as e:
        raise FleetError(f"broker {url} cannot be reached: {e} (start it: see README, "
                         "'Many hosts')") from e
    return client


def celery_app(url: str, visibility: float = DEFAULT_VISIBILITY) -> Celery:
    """The Celery app of the fleet on broker ``url``."""
    from celery import Celery

    app = Celery("testbed-fleet", broker=url, set_as_current=False)
    conf: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_create_missing_queues": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }
    app.conf.update(conf)
    return app


def send(app: Celery, job_id: str, attempt: int, queue: str) -> None:
    """Put one delivery of ``job_id``'s ``attempt`` on ``queue``."""
    from kombu.exceptions import OperationalError

    try:
        app.send_task(TASK, args=[job_id, attempt], queue=queue, retry=True,
                      retry_policy={"max_retries": 5, "interval_start": 0.5,
                                    "interval_step": 1, "interval_max": 3})
    except OperationalError as e:
        raise FleetError(f"cannot queue job {job_id}: the broker is unreachable: {e}") from e
