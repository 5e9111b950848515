"""The Celery entry point: `celery -A workers worker|beat` finds `app` here.

The app is built on first access from the environment (Settings.from_env), so
importing `workers.tasks` or `workers.app` does no work and reads no settings.
"""

from __future__ import annotations

from typing import Any

_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name not in ("app", "celery"):
        raise AttributeError(f"module 'workers' has no attribute {name!r}")
    if _app is None:
        from service.config import Settings
        from workers.app import make_celery

        _app = make_celery(Settings.from_env())
    return _app
