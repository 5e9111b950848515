"""The periodic jobs: each its own beat entry; each re-drive pass records its completion,
beat's health (/metrics, `tally sweeper`)."""

from __future__ import annotations

import dataclasses
import json
import time

import psycopg
import redis
from psycopg.rows import dict_row

from service import queue
from service.operations.sweep import redrive
from tests.tally_command import run_tally
from workers.app import beat_schedule


class NoTasks:
    def wake_drain(self, *, force=False):
        return False

    def send_deliveries(self, leased):
        pass


def _sweep_once(service_urls):
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        redrive(conn, redis.Redis.from_url(service_urls["REDIS_URL"]), NoTasks(), grace_seconds=60)


def _gauge(app, name):
    from service.api import metrics

    if "metrics" not in app.blueprints:
        app.register_blueprint(metrics.bp)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    values = [line.split()[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(values[0]) if values else None


def test_each_sweep_pass_is_beats_health_in_metrics_and_tally_sweeper(
    service_urls, db, private_app
):
    # given a sweep pass that completed just now
    _sweep_once(service_urls)
    # then /metrics (the web, which never runs the sweep) shows when, and the health
    # check beat's container runs passes
    shown = _gauge(private_app, "tally_sweep_last_completed_timestamp_seconds")
    assert shown is not None and abs(shown - time.time()) < 5
    fresh = run_tally(service_urls["DATABASE_URL"], "sweeper", "--within", "60")
    assert fresh.returncode == 0, fresh.stderr
    assert "last completed a pass at" in fresh.stdout

    # when no pass completes for ten minutes (beat stopped, or no worker runs its task)
    db.execute("UPDATE sweeper_passes SET completed_at = now() - interval '10 minutes'")
    # then the gauge shows the old time, and the health check fails
    shown = _gauge(private_app, "tally_sweep_last_completed_timestamp_seconds")
    assert abs(shown - (time.time() - 600)) < 5
    stale = run_tally(service_urls["DATABASE_URL"], "sweeper", "--within", "60")
    assert stale.returncode == 1
    # and the next pass makes it healthy again
    _sweep_once(service_urls)
    assert run_tally(service_urls["DATABASE_URL"], "sweeper").returncode == 0


def test_each_periodic_job_is_a_beat_entry_of_its_own(settings):
    # given the settings without and with an upstream Stripe key
    without = beat_schedule(dataclasses.replace(settings, stripe_api_key=None))
    with_key = beat_schedule(dataclasses.replace(settings, stripe_api_key="sk_test_upstream"))

    # then each job has its own entry, schedule and expiry (a run not started within its
    # interval is dropped), and the re-fetch runs only when there is an upstream to ask
    jobs = {entry["task"]: entry for entry in with_key.values()}
    assert set(jobs) == {
        queue.SWEEP,
        queue.CHECK_LEDGER,
        queue.REFETCH_OPEN_PAYMENTS,
        queue.PRUNE_HISTORY,
        queue.EXPIRE_IDEMPOTENCY_KEYS,
    }
    assert queue.REFETCH_OPEN_PAYMENTS not in {e["task"] for e in without.values()}
    assert jobs[queue.SWEEP]["schedule"] == settings.sweep_interval
    for entry in jobs.values():
        assert entry["options"]["expires"] == entry["schedule"] > 0


def test_as_beat_starts_each_periodic_job_runs_once(settings, app):
    # given the worker's Celery app on the tests' Redis, and empty queues
    from celery.signals import beat_init

    from workers.app import make_celery

    client = app.extensions["redis"]
    client.delete(queue.EVENTS_QUEUE)
    celery = make_celery(settings)

    # when its beat starts
    class Beat:  # beat_init's sender: beat's service, which knows its app
        pass

    beat = Beat()
    beat.app = celery
    beat_init.send(sender=beat)

    # then each periodic job's task was sent once, without waiting out its interval
    sent = [json.loads(m)["headers"]["task"] for m in client.lrange(queue.EVENTS_QUEUE, 0, -1)]
    assert sorted(sent) == sorted(e["task"] for e in beat_schedule(settings).values())
    client.delete(queue.EVENTS_QUEUE)
