"""The real processes: gunicorn from the Procfile (through bin/docker-entrypoint) and a
Celery worker (`celery -A workers worker`, whatever its tasks are), driven through a
full flow with Basic and Bearer auth and a signed webhook.

Every line either process logs is searched for every configured key and secret;
the request lines are JSON; /metrics sums the request histogram over both gunicorn
workers, and the worker serves its own counters.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devtools.stripe_events import signed_webhook, stripe_event
from tests.conftest import ROOT
from tests.pipeline_support import Receiver, free_port, wait_for

VENV_BIN = str(Path(ROOT) / ".venv" / "bin")


def request_processes(web_log: str) -> set[int]:
    """The gunicorn workers that logged a request line so far."""
    complete = web_log[: web_log.rfind("\n") + 1]  # a line being written is not JSON yet
    return {
        json.loads(line)["process"] for line in complete.splitlines() if '"tally.request"' in line
    }


def samples(text: str) -> list[Any]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


class Processes:
    """Child processes in their own sessions, each logging to a file; all stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited early:\n{self.log(name)[-5000:]}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.mark.processes
@pytest.mark.timeout(240)
def test_real_processes_log_json_without_secrets_and_sum_metrics(settings, private_redis, tmp_path):
    # given web and worker started as deployed, with keys and secrets of this run only
    test_key = f"sk_test_obs{secrets.token_hex(12)}"
    live_key = f"sk_live_obs{secrets.token_hex(12)}"
    webhook_secret = f"whsec_obs{secrets.token_hex(16)}"
    live_webhook_secret = f"whsec_obs{secrets.token_hex(16)}"
    web_port, worker_metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    tmp = tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        PROCFILE=str(Path(ROOT) / "Procfile"),
        PORT=str(web_port),
        WEB_CONCURRENCY="2",
        DATABASE_URL=settings.database_url,
        REDIS_URL=private_redis.url,
        TALLY_API_KEYS=f"{test_key},{live_key}",
        STRIPE_WEBHOOK_SECRETS_TEST=webhook_secret,
        STRIPE_WEBHOOK_SECRETS_LIVE=live_webhook_secret,
        TALLY_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        TALLY_DELIVERY_TIMEOUT="5",
        TALLY_RATE_LIMIT="0",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        TALLY_WORKER_METRICS_PORT=str(worker_metrics_port),
        TALLY_WORKER_METRICS_ADDR="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    procs = Processes(env, tmp)
    receiver = Receiver()
    made = 0  # requests the web process answered, to compare with its histogram
    probes = 0
    session = requests.Session()

    def call(method: str, path: str, *, auth: str = "bearer", key: str = test_key, **kw: Any):
        nonlocal made
        headers = kw.pop("headers", {})
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif auth == "basic":
            kw["auth"] = (key, "")
        response = session.request(method, base + path, headers=headers, timeout=10, **kw)
        made += 1
        return response

    def up() -> bool:
        nonlocal probes
        procs.check_running()
        try:
            response = call("GET", "/healthz", auth="none")
        except requests.ConnectionError:
            return False
        probes += 1
        return response.status_code == 200

    try:
        procs.start("web", [str(Path(ROOT) / "bin" / "docker-entrypoint"), "web"])
        procs.start(
            "worker",
            ["celery", "-A", "workers", "worker", "--include", "workers.observability",
             "-l", "info", "--concurrency", "2", "-n", f"obs-{os.getpid()}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
        )  # fmt: skip
        wait_for(up, 60, "gunicorn to answer")

        # when a customer is billed and paid: Basic and Bearer, test and live keys
        cus = call("POST", "/v1/customers", auth="basic", data={"email": "o@example.com"})
        assert cus.status_code == 200, cus.text
        endpoint = call(
            "POST",
            "/v1/webhook_endpoints",
            auth="basic",
            data={"url": receiver.url, "enabled_events[]": "*"},
        ).json()
        receiver.secret = endpoint["secret"]
        item = {"customer": cus.json()["id"], "amount": 1500, "currency": "usd"}
        assert call("POST", "/v1/invoiceitems", data=item).status_code == 200
        invoice = call(
            "POST",
            "/v1/invoices",
            data={"customer": item["customer"], "pending_invoice_items_behavior": "include"},
        ).json()
        call("POST", f"/v1/invoices/{invoice['id']}/finalize", auth="basic")
        pi = call(
            "POST",
            "/v1/payment_intents",
            data={"amount": 1500, "currency": "usd", "customer": item["customer"]},
            headers={"Idempotency-Key": secrets.token_hex(8)},
        ).json()
        attach = call(
            "POST",
            f"/v1/invoices/{invoice['id']}/attach_payment",
            data={"payment_intent": pi["id"]},
        )
        assert attach.status_code == 200, attach.text
        assert call("GET", "/v1/customers", key=live_key).status_code == 200
        assert call("GET", "/v1/customers", key="sk_test_wrong_key_123").status_code == 401
        body, headers = signed_webhook(stripe_event(pi, "payment_intent.succeeded"), webhook_secret)
        intake = call("POST", "/webhooks/stripe", auth="none", data=body, headers=headers)
        assert intake.status_code == 200, intake.text
        wait_for(
            lambda: (
                call("GET", f"/v1/invoices/{invoice['id']}", auth="basic").json()["status"]
                == "paid"
            ),
            60,
            "the worker to credit the invoice",
        )
        wait_for(lambda: receiver.event_ids(), 60, "a delivery to the receiver")

        # and concurrent requests, each on its own connection (a kept-alive one stays with
        # one gthread worker), until both gunicorn workers have answered some
        def fresh_get(_: int) -> int:
            return requests.get(
                f"{base}/v1/invoices/{invoice['id']}",
                headers={"Authorization": f"Bearer {test_key}", "Connection": "close"},
                timeout=10,
            ).status_code

        for _ in range(50):
            with ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(fresh_get, range(32)))
            made += len(statuses)
            assert set(statuses) == {200}
            if len(request_processes(procs.log("web"))) == 2:
                break

        # then /metrics counts every request once, summed over the workers' files
        scraped = samples(session.get(f"{base}/metrics", timeout=10).text)
        counted = sum(
            s.value for s in scraped if s.name == "tally_http_request_duration_seconds_count"
        )
        assert counted == made
        paid_route = [
            s
            for s in scraped
            if s.name == "tally_http_request_duration_seconds_count"
            and s.labels["route"] == "/v1/invoices/<invoice_id>"
        ]
        assert paid_route and all(invoice["id"] not in str(s.labels) for s in scraped)
        # and the worker's own endpoint shows the credit and its tasks
        worker_text = wait_for(
            lambda: _worker_metrics(worker_metrics_port), 20, "the worker's metrics"
        )
        worker_samples = samples(worker_text)
        assert any(
            s.name == "tally_inbound_events_settled_total"
            and s.labels == {"type": "payment_intent.succeeded", "outcome": "processed"}
            and s.value >= 1
            for s in worker_samples
        )
        assert any(
            s.name == "tally_task_duration_seconds_count" and s.labels["state"] == "SUCCESS"
            for s in worker_samples
        )
    finally:
        procs.stop()
        receiver.close()

    # then no log line of any process holds a key, a secret or a Basic credential
    logs = {name: procs.log(name) for name in procs.procs}
    forbidden = [test_key, live_key, webhook_secret, live_webhook_secret, endpoint["secret"]]
    forbidden += [base64.b64encode(f"{k}:".encode()).decode() for k in (test_key, live_key)]
    for name, text in logs.items():
        for secret in forbidden:
            assert secret not in text, f"{name} logged a secret"
    # and gunicorn logs nothing but JSON: one line per request with its ids and timing
    lines = [json.loads(line) for line in logs["web"].splitlines() if line.strip()]
    requests_logged = [line for line in lines if line.get("logger") == "tally.request"]
    # (successful /healthz probes are logged at DEBUG: not one line per probe)
    assert len(requests_logged) == made - probes
    for line in requests_logged:
        assert line["request_id"].startswith("req_")
        assert {"route", "status", "duration_ms", "method", "outcome"} <= line.keys()
    assert len({line["process"] for line in requests_logged}) == 2, "both workers answered"
    intake_lines = [line for line in requests_logged if line["route"] == "/webhooks/stripe"]
    assert intake_lines[0]["event_id"].startswith("evt_")
    # and the worker logged one JSON line per task, with its name, state and duration
    task_lines = [
        json.loads(line)
        for line in logs["worker"].splitlines()
        if line.startswith("{") and '"tally.task"' in line
    ]
    assert task_lines
    assert all({"task", "task_id", "state", "duration_ms"} <= t.keys() for t in task_lines)


def _worker_metrics(port: int) -> str | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return None
