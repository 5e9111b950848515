"""The newcomer's path, for real: `bin/dev` (devtools.dev) as a process, the `tally`
command finding its servers, `bin/test`'s first lines, and quiet idle logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devtools.localenv import free_port
from service import queue
from service.config import read_dev_env
from tests import factories
from tests.conftest import ROOT, TEST_KEY, WEBHOOK_SECRET
from tests.tally_command import TALLY


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without Tally's settings, so only dev.env (under data_dir) and
    `extra` configure the process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TALLY_", "STRIPE_", "DATABASE_URL", "REDIS_URL", "PG"))
    }
    return {**env, "TALLY_DEV_DATA": str(data_dir), **extra}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 -- a loopback http URL
            return True
    except OSError:
        return False


# -- `tally` finds bin/dev's servers in dev.env ------------------------------------------


def test_every_tally_subcommand_finds_bin_devs_servers_in_dev_env(
    tmp_path, service_urls, api, db
) -> None:
    invoice = factories.open_invoice(api)
    finalized = db.execute(
        "SELECT id FROM events WHERE type = 'invoice.finalized' AND data->'object'->>'id' = %s",
        (invoice["id"],),
    ).fetchone()
    (tmp_path / "dev.env").write_text(
        f"TALLY_API_KEYS={TEST_KEY}\nDATABASE_URL={service_urls['DATABASE_URL']}\n"
        f"REDIS_URL={service_urls['REDIS_URL']}\n"
    )
    env = _env(tmp_path)

    def tally(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TALLY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    listed = tally("events", "list", "--type", "invoice.finalized", "--json", "--limit", "10000")
    assert listed.returncode == 0, listed.stderr
    assert finalized["id"] in {e["id"] for e in json.loads(listed.stdout)}
    inbound = tally("inbound", "list")
    assert inbound.returncode == 0, inbound.stderr
    # audit reads the same database (its verdict on this shared one is not the point).
    audit = tally("audit")
    assert audit.returncode in (0, 1) and "PostgreSQL:" not in audit.stderr, audit.stderr


def test_trigger_against_a_stopped_tally_says_tally_is_not_answering(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [TALLY, "trigger", "payment_intent.succeeded", "pi_123", "--url", url],
        env=_env(tmp_path, TALLY_API_KEYS=TEST_KEY, STRIPE_WEBHOOK_SECRETS_TEST=WEBHOOK_SECRET),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"Tally is not answering at {url}: is bin/dev running?\n"


# -- bin/dev ------------------------------------------------------------------------------


def _dev(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.dev", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.processes
def test_a_second_bin_dev_says_one_is_running_and_changes_nothing(
    tmp_path,
    scratch_dsn,
    private_redis: Any,
) -> None:
    port = free_port()
    env = _env(tmp_path, DATABASE_URL=scratch_dsn, REDIS_URL=private_redis.url)
    first = _dev({**env, "PORT": str(port)})
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"http://127.0.0.1:{port}/readyz"):
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "bin/dev never answered /readyz"
            time.sleep(0.5)
        saved = read_dev_env(tmp_path / "dev.env")
        # What `tally` needs to find this run's servers, with no DATABASE_URL to copy.
        assert saved["TALLY_URL"] == f"http://127.0.0.1:{port}"
        assert saved["DATABASE_URL"] == scratch_dsn
        assert saved["REDIS_URL"] == private_redis.url
        # gunicorn's control socket is this run's, not the user's shared default.
        assert (tmp_path / "gunicorn.ctl").is_socket()
        before = (tmp_path / "dev.env").read_text()

        second = _dev({**env, "PORT": str(free_port())})
        output, _ = second.communicate(timeout=30)
        assert second.returncode == 1
        assert output == (
            f"bin/dev is already running in this checkout"
            f" (pid {first.pid}, http://127.0.0.1:{port})\n"
        )
        assert (tmp_path / "dev.env").read_text() == before

        stop = _dev(env, "--stop")
        output, _ = stop.communicate(timeout=30)
        assert stop.returncode == 1
        assert output.startswith(f"bin/dev is running (pid {first.pid},")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0

    # Stopped: --stop has no embedded server to stop here (both were configured).
    stop = _dev(env, "--stop")
    output, _ = stop.communicate(timeout=30)
    assert (stop.returncode, output) == (0, f"no embedded server is running under {tmp_path}\n")


def test_bin_dev_runs_the_procfiles_own_lines_localized(
    tmp_path,
    scratch_dsn,
    private_redis: Any,
) -> None:
    # given: a Procfile ($PROCFILE, as bin/docker-entrypoint reads it) whose web line
    # says what it was given, and whose release line must not run
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "release: echo release ran\n"
        "web: echo web ran on $PORT, bind 0.0.0.0:$PORT, schedule /tmp/beat-schedule\n"
    )
    port = free_port()
    env = _env(tmp_path, DATABASE_URL=scratch_dsn, REDIS_URL=private_redis.url,
               PROCFILE=str(procfile), PORT=str(port))  # fmt: skip
    # when
    dev = _dev(env)
    output, _ = dev.communicate(timeout=90)
    # then: that line ran, through the shell, bound to loopback, its /tmp path moved
    # into bin/dev's data dir; nothing else (a line that exits stops bin/dev)
    assert (
        f"web   | web ran on {port}, bind 127.0.0.1:{port}, schedule {tmp_path}/beat-schedule\n"
        in output
    )
    assert "release ran" not in output
    assert "web exited with status 0; stopping the others" in output
    assert dev.returncode == 1


# -- bin/test -----------------------------------------------------------------------------


def _bin_test(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    result = subprocess.run(
        [str(ROOT / "bin" / "test"), "--collect-only", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_bin_test_says_it_takes_minutes_and_which_servers_it_uses() -> None:
    assert "bin/test: the whole suite, about 8 minutes" in _bin_test("-q").stderr
    one_file = _bin_test("tests/api/test_params.py")
    assert "minutes" not in one_file.stderr
    assert "tally: PostgreSQL " in one_file.stdout
    assert ", Redis redis://" in one_file.stdout
    # --fast leaves out the tests that start a real worker
    fast = _bin_test("--fast", "-q", "tests/pipeline/test_delivery.py")
    assert "minutes" not in fast.stderr
    assert "deselected" in fast.stdout


# -- idle logs ----------------------------------------------------------------------------


def test_idle_beat_jobs_log_at_debug_and_other_tasks_at_info(settings, caplog) -> None:
    from celery.signals import task_postrun

    import workers.tasks  # noqa: F401  (registers the tasks)
    from workers.app import make_celery

    app = make_celery(settings)
    caplog.set_level(logging.DEBUG, logger="tally.task")
    caplog.set_level(logging.DEBUG, logger="celery.beat")

    def logged(name: str, state: str) -> int:
        caplog.clear()
        task = app.tasks[name]
        task_postrun.send(sender=task, task_id="t", task=task, retval=None, state=state)
        [record] = [r for r in caplog.records if r.name == "tally.task"]
        return record.levelno

    assert logged(queue.SWEEP, "SUCCESS") == logging.DEBUG
    assert logged(queue.PRUNE_HISTORY, "SUCCESS") == logging.DEBUG
    assert logged(queue.SWEEP, "FAILURE") == logging.ERROR
    assert logged(queue.PUBLISH_EVENTS, "SUCCESS") == logging.INFO

    caplog.clear()
    beat = logging.getLogger("celery.beat")
    beat.info("Scheduler: Sending due task %s (%s)", "sweep", queue.SWEEP)
    beat.info("beat: Starting...")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, f"Scheduler: Sending due task sweep ({queue.SWEEP})"),
        (logging.INFO, "beat: Starting..."),
    ]
    caplog.clear()
    beat.setLevel(logging.INFO)
    try:
        beat.info("Scheduler: Sending due task %s (%s)", "sweep", queue.SWEEP)
        assert caplog.records == []  # at beat's -l info, not shown
    finally:
        beat.setLevel(logging.NOTSET)


def test_bin_dev_on_a_port_in_use_says_so_and_starts_nothing(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = _dev(_env(tmp_path, PORT=str(port)))
        output, _ = dev.communicate(timeout=30)
    assert (dev.returncode, output) == (1, f"port {port} is in use (another bin/dev?): set PORT\n")
    assert not (tmp_path / "dev.env").exists()
