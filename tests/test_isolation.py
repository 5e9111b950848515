"""One dead webhook receiver hurts only itself (issue 20): bench/isolation.py in a short
form. The Procfile's web, worker, deliveries (threads pool, 8 threads) and beat run with
the production retry schedule and delivery timeout; a healthy receiver and a black hole
(a loopback socket that accepts and never answers) are both subscribed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.timeout(200)
def test_a_black_hole_neither_delays_a_healthy_receiver_nor_disables_itself(
    tmp_path: Path,
) -> None:
    # when 60 invoices are finalized at 20/s, each event going to both endpoints, and
    # the run goes on for 25 s once the healthy receiver has them all
    figures = tmp_path / "isolation.json"
    subprocess.run(
        [sys.executable, "bench/isolation.py", "--events", "60", "--rate", "20",
         "--wait", "40", "--linger", "25", "--json", str(figures)],
        cwd=ROOT,
        timeout=180,
        check=True,
    )  # fmt: skip
    result = json.loads(figures.read_text())
    healthy, dead = result["healthy"], result["dead"]
    # then the healthy receiver got every event within 5 s
    assert healthy["received"] == 60, result
    assert healthy["p99_s"] < 5, result
    # and the black hole held one deliveries thread at a time, and is still enabled
    # with nothing failed: its deliveries wait
    assert dead["most_open_at_once"] == 1, result
    assert dead["status"] == "enabled", result
    assert set(dead["deliveries"]) == {"pending"}, result
