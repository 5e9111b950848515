"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from service.api import deps

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up; says nothing of its dependencies."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Ready when PostgreSQL answers; Redis is reported but not required."""
    checks: dict[str, str] = {}
    try:
        deps.get_conn().execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = type(exc).__name__
    try:
        deps.redis_client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = type(exc).__name__
    ready = checks["postgres"] == "ok"
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
