"""The steady-rate benchmark's verdicts (bench/steady.py): silences, kept up, the knee,
and its CPU accounting of processes that come and go; no benchmark runs."""

import subprocess
import sys

import pytest

from bench.meters import CpuMeter
from bench.steady_figures import kept_up, knee, silences


def test_silences_are_gaps_between_consecutive_commits_longest_first() -> None:
    commits = [10.0, 10.1, 10.2, 12.0, 12.1, 13.6, 13.7]
    gaps = silences(commits, longer_than=1.0)
    assert [at for at, _ in gaps] == [10.2, 12.1]
    assert [length for _, length in gaps] == pytest.approx([1.8, 1.5])
    assert silences(commits)[0][0] == 10.2
    assert silences([10.0, 10.5], longer_than=1.0) == []


def test_kept_up_needs_every_delivery_the_rate_and_a_short_tail() -> None:
    sent = {f"in_{k}": k / 100 for k in range(201)}  # 100/s for 2 s
    on_time = {key: at + 0.05 for key, at in sent.items()}
    assert kept_up(sent, on_time, asked_rate=100)
    # One lost delivery.
    assert not kept_up(sent, {k: v for k, v in on_time.items() if k != "in_7"}, asked_rate=100)
    # The sender did not reach the rate asked.
    assert not kept_up(sent, on_time, asked_rate=120)
    # A backlog: the last second's webhooks waited 1.5 s.
    late = {key: at + (1.5 if at > 1.0 else 0.05) for key, at in sent.items()}
    assert not kept_up(sent, late, asked_rate=100)


def test_knee_is_the_highest_fraction_kept_up_under_the_p99_bound() -> None:
    rows = [
        {"fraction": 0.1, "kept_up": True, "delivered": {"p99": 80.0}},
        {"fraction": 0.2, "kept_up": True, "delivered": {"p99": 240.0}},
        {"fraction": 0.3, "kept_up": True, "delivered": {"p99": 900.0}},
        {"fraction": 0.4, "kept_up": False, "delivered": {"p99": 100.0}},
    ]
    assert knee(rows) == 0.2
    assert knee(rows[2:]) is None


def test_cpu_meter_counts_a_process_that_started_and_exited_between_samples() -> None:
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    procs: list[subprocess.Popen[bytes]] = []
    meter = CpuMeter({"spinner": lambda: [p.pid for p in procs]}, interval=0.02)
    meter.start()
    procs.append(subprocess.Popen([sys.executable, "-c", spin + "\ntime.sleep(0.5)"]))
    procs[0].wait(10)
    used = meter.stop()["spinner"]
    assert 0.25 <= used <= 1.0, used
