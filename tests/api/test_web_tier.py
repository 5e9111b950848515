"""The web tier at its edges: /metrics behind a token, the client's address in the
request log, and connection pools sized to what each process can use."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any

import pytest

from service import observability
from service.config import Settings
from tests.pipeline_support import RedisServer, WorkerProcess, wait_for, worker_env

METRICS_TOKEN = "metrics-scrape-token-0123456789"


def test_metrics_need_the_token_when_one_is_configured(make_app: Any) -> None:
    client = make_app(metrics_token=METRICS_TOKEN).test_client()
    refused = [
        client.get("/metrics"),
        client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}),
        client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"}),
    ]
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.get_json()["error"]["type"] == "authentication_error"
        assert "tally_http_request_duration_seconds" not in response.text
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status_code == 200
    assert "tally_http_request_duration_seconds" in allowed.text


def test_metrics_are_open_without_a_token(make_app: Any) -> None:
    response = make_app().test_client().get("/metrics")
    assert response.status_code == 200
    assert "tally_http_request_duration_seconds" in response.text


def _request_line(app: Any, peer: str, forwarded_for: str | None) -> dict[str, Any]:
    handler = observability.json_handler()
    lines: list[str] = []
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        app.test_client().get("/healthz", headers=headers, environ_base={"REMOTE_ADDR": peer})
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = [json.loads(line) for line in lines if '"tally.request"' in line]
    return line


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # a client talking to Tally directly: X-Forwarded-For is its own to forge
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # through the trusted proxy on loopback
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        # through two trusted proxies (loopback, then 10.0.0.0/8)
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", "198.51.100.7"),
        # a client that forged a hop in front: the nearest untrusted hop counts
        ("127.0.0.1", "192.0.2.66, 198.51.100.7", "198.51.100.7"),
        # a trusted proxy without the header
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_the_request_log_names_the_client_believing_only_trusted_proxies(
    make_app: Any, caplog: Any, peer: str, forwarded_for: str | None, client: str
) -> None:
    app = make_app(trusted_proxies=("127.0.0.1", "::1", "10.0.0.0/8"))
    with caplog.at_level(logging.DEBUG):
        line = _request_line(app, peer, forwarded_for)
    assert line["client"] == client


def test_a_web_worker_pool_follows_its_threads_unless_set(make_app: Any) -> None:
    assert make_app(pool_max_size=None, web_threads=3).extensions["pool"].max_size == 4
    assert make_app(pool_max_size=None).extensions["pool"].max_size == 9  # 8 threads
    assert make_app(pool_max_size=7, web_threads=3).extensions["pool"].max_size == 7


@pytest.mark.processes
def test_a_celery_process_pool_follows_the_tasks_it_runs_at_once(settings: Settings) -> None:
    # given: real workers under each pool, each with its own Redis db and a beat
    # sending sweeps every second, so each opens its resources at once
    redis_server = RedisServer()
    redis_server.start()
    workers = [
        WorkerProcess(
            worker_env(dataclasses.replace(settings, redis_url=redis_server.url[:-1] + str(db))),
            concurrency=concurrency,
            pool=pool,
        )
        for db, (pool, concurrency) in enumerate(
            [("prefork", 3), ("threads", 5), ("solo", 1)], start=1
        )
    ]
    try:
        for worker in workers:
            worker.start()

        def pool_sizes(worker: WorkerProcess) -> set[int]:
            # the whole log: worker.log() is its tail, which the periodic jobs' lines
            # (a ledger check on the suite's database reports others' breaches) outrun
            whole = worker.log_path.read_text(errors="replace")
            return {int(n) for n in re.findall(r'"pool_max": (\d+)', whole)}

        # then: one or two connections per prefork child or solo process, N + 1 under
        # N threads, never the old ten
        for worker, expected in zip(workers, (2, 6, 2), strict=True):
            wait_for(lambda w=worker: pool_sizes(w), 30, f"a {worker.pool} pool to open")
            assert pool_sizes(worker) == {expected}, worker.log()
    finally:
        for worker in workers:
            worker.stop()
        redis_server.stop()
