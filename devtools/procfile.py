"""The Procfile: the one place process commands are written. bin/dev, the benchmarks,
the chaos run and the tests run its lines as the image does (bin/docker-entrypoint:
`/bin/sh -c "exec <line>"`), with two edits that keep a local run private: a
`0.0.0.0` bind becomes `127.0.0.1`, and a `/tmp/...` path (beat's schedule file)
moves into the run's own directory, where another run cannot share it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "bin" / "docker-entrypoint"


def procfile_path(env: Mapping[str, str] = os.environ) -> Path:
    """$PROCFILE (as bin/docker-entrypoint reads it), else the checkout's Procfile."""
    return Path(env.get("PROCFILE") or ROOT / "Procfile")


def read_procfile(path: Path) -> dict[str, str]:
    """{process name: command} of a Procfile (foreman's format)."""
    procs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            procs[match[1]] = match[2]
    return procs


def localize(command: str, run_dir: Path) -> str:
    """The command bound to loopback, its /tmp paths moved into run_dir."""
    command = command.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 -- replaced, not bound
    return re.sub(r"(?<![\w.])/tmp/", f"{run_dir}/", command)


class LocalProcfile:
    """The Procfile's lines localized into `run_dir`, written to run_dir/Procfile, so
    that bin/docker-entrypoint runs each of them as the image would (`argv(name)` with
    `env(...)`). `add` writes another line, e.g. the web line serving another app."""

    def __init__(self, run_dir: Path, source: Path | None = None) -> None:
        self.source = source or procfile_path()
        self.path = run_dir / "Procfile"
        self.lines = {n: localize(c, run_dir) for n, c in read_procfile(self.source).items()}
        self._write()

    def add(self, name: str, line: str) -> None:
        self.lines[name] = line
        self._write()

    def _write(self) -> None:
        # Whole or not at all: a process starting meanwhile reads this file
        # (bin/docker-entrypoint), and a rewrite in place once let `python -m bench`'s
        # deliveries and beat read it empty as the attach phase added its hello line.
        staged = self.path.with_name(f".{self.path.name}.new")
        staged.write_text("".join(f"{n}: {c}\n" for n, c in self.lines.items()))
        staged.replace(self.path)

    def argv(self, name: str) -> list[str]:
        if name not in self.lines:
            raise KeyError(f"no {name!r} line in {self.source}")
        return [str(ENTRYPOINT), name]

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with this Procfile, and this interpreter's gunicorn and celery first
        on PATH (the lines name them bare)."""
        path = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        return {**env, "PATH": path, "PROCFILE": str(self.path)}
