"""Operations endpoints: liveness (/healthz) and readiness (/readyz) for probes."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint

from service import migrate
from service.api import deps

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# The value of a check that did not pass.
FAILED = "unavailable"

# Seconds /readyz waits for a pooled connection. The pool's own timeout (5 s) is
# longer than a probe's (Kubernetes: 1 s by default; the README suggests 3 s), and a
# probe that times out says less than a prompt 503 naming what is down.
READY_CONNECTION_TIMEOUT = 2.0


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Liveness: the process answers. No dependency is checked, so a PostgreSQL
    outage never makes an orchestrator restart every web process at once."""
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Readiness: PostgreSQL answers and every shipped migration is applied.

    Redis is reported but does not gate: nothing lives only in Redis, webhooks are
    stored and acknowledged without it, and the sweeper re-drives everything from
    PostgreSQL once it is back (see the README's Deployment section).
    """
    checks: dict[str, str] = {}
    body: dict[str, Any] = {}
    try:
        with deps.pool().connection(timeout=READY_CONNECTION_TIMEOUT) as conn:
            checks["postgres"] = "ok"
            waiting = migrate.pending(conn)
        checks["migrations"] = "pending" if waiting else "ok"
        if waiting:
            body["pending_migrations"] = waiting
    except Exception as exc:
        # Which check failed, never why: the error is the log's business (its class
        # only there too, since a message could carry the DSN).
        log.warning("readiness: the postgres check failed: %s", type(exc).__name__)
        checks.setdefault("postgres", FAILED)
        checks.setdefault("migrations", "unknown")
    try:
        deps.redis_client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("readiness: the redis check failed: %s", type(exc).__name__)
        checks["redis"] = FAILED
    ready = checks["postgres"] == "ok" and checks["migrations"] == "ok"
    body = {"status": "ready" if ready else "unavailable", "checks": checks, **body}
    return body, 200 if ready else 503, {"Cache-Control": "no-store"}
