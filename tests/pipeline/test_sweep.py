"""Each sweeper pass records its completion: beat's health (/metrics, `tally sweeper`)."""

from __future__ import annotations

import time

import psycopg
import redis
from psycopg.rows import dict_row

from service.operations.sweep import sweep
from tests.tally_command import run_tally


class NoTasks:
    def wake_drain(self, *, force=False):
        return False

    def wake_publisher(self, *, force=False):
        return False

    def send_deliveries(self, leased):
        pass


def _sweep_once(service_urls):
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        sweep(
            conn,
            redis.Redis.from_url(service_urls["REDIS_URL"]),
            NoTasks(),
            grace_seconds=60,
            upstream=None,
            refetch_after=3600,
            now=int(time.time()),
        )


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
