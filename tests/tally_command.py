"""`tally`, the operator command, run as the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The console script pip installed beside this interpreter ([project.scripts]).
TALLY = str(Path(sys.executable).with_name("tally"))


def run_tally(
    dsn: str, *args: str, redis_url: str = "redis://127.0.0.1:1/0"
) -> subprocess.CompletedProcess[str]:
    # No TALLY_API_KEYS: the database commands must not need them. By default a Redis
    # that is not there: waking the workers is best effort.
    env = {k: v for k, v in os.environ.items() if k != "TALLY_API_KEYS"}
    env["DATABASE_URL"] = dsn
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [TALLY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
