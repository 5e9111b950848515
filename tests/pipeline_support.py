"""Real processes for the pipeline tests, over the local-stack toolkit (devtools): a
private redis-server, the app served over HTTP against it, a real `celery -A workers
worker` subprocess (with beat), a webhook receiver, and signed Stripe events sent.

The worker runs Celery's pool named by TALLY_TEST_POOL (prefork by default;
.ci/run runs these tests again with `threads`): crediting and publishing must
be as prompt under any pool.

The private Redis keeps the test worker's queues and wake-ups away from anything
else using the machine's Redis, and lets a test stop and restart it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import devtools.worker
from devtools.localenv import free_port
from devtools.processes import service_env
from devtools.receiver import Receiver
from devtools.servers import RedisServer
from devtools.stripe_events import signed_webhook
from devtools.waiting import wait_for
from service.app import create_app
from service.config import Settings
from tests.conftest import (
    LIVE_KEY,
    LIVE_WEBHOOK_SECRET,
    TEST_KEY,
    WEBHOOK_SECRET,
    ApiClient,
    serving,
)

__all__ = ["Receiver", "RedisServer", "WorkerProcess", "free_port", "wait_for"]

POOL = os.environ.get("TALLY_TEST_POOL", "prefork")


class WorkerProcess(devtools.worker.WorkerProcess):
    """devtools.worker.WorkerProcess, with the pool TALLY_TEST_POOL names by default."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, pool: str = POOL):
        super().__init__(env, concurrency, pool)


def send_event(base_url: str, event: dict[str, Any], session: Any = requests) -> int:
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    response = session.post(f"{base_url}/webhooks/stripe", data=body, headers=headers, timeout=10)
    return int(response.status_code)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a worker (or web) process for `settings`: the tests' keys and
    secrets, short sweep, grace and delivery timeouts."""
    defaults = {
        "TALLY_API_KEYS": f"{TEST_KEY},{LIVE_KEY}",
        "STRIPE_WEBHOOK_SECRETS_TEST": WEBHOOK_SECRET,
        "STRIPE_WEBHOOK_SECRETS_LIVE": LIVE_WEBHOOK_SECRET,
        "TALLY_DELIVERY_RETRY_SCHEDULE": ",".join(map(str, settings.delivery_retry_schedule)),
        "TALLY_SWEEP_INTERVAL": "1",
        "TALLY_INBOUND_GRACE_SECONDS": "2",
        "TALLY_DELIVERY_TIMEOUT": "5",
    }
    return service_env(settings.database_url, settings.redis_url, **{**defaults, **extra})


# -- fixtures (import them into a test module) ---------------------------------------------


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def pipeline_settings(settings: Settings, private_redis: RedisServer) -> Settings:
    return dataclasses.replace(settings, redis_url=private_redis.url)


@pytest.fixture(scope="module")
def pipeline_app(pipeline_settings: Settings) -> Iterator[Any]:
    app = create_app(pipeline_settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["pool"].close()


@pytest.fixture(scope="module")
def pipeline_server(pipeline_app: Any) -> Iterator[str]:
    with serving(pipeline_app) as url:
        yield url


@pytest.fixture
def papi(pipeline_app: Any) -> ApiClient:
    return ApiClient(pipeline_app)


@pytest.fixture(scope="module")
def worker_process(pipeline_settings: Settings) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(worker_env(pipeline_settings))
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(worker_process: WorkerProcess) -> WorkerProcess:
    """The module's worker, restarted if an earlier test killed it."""
    worker_process.ensure_running()
    return worker_process


@pytest.fixture
def receiver(papi: ApiClient) -> Iterator[Receiver]:
    """A receiver subscribed to every event through a real webhook endpoint."""
    rec = Receiver()
    created = papi.post("/v1/webhook_endpoints", {"url": rec.url, "enabled_events[]": "*"})
    assert created.status_code == 200, created.json
    rec.secret = created.json["secret"]
    rec.endpoint_id = created.json["id"]  # type: ignore[attr-defined]
    yield rec
    papi.delete(f"/v1/webhook_endpoints/{created.json['id']}")
    rec.close()
