"""GET /metrics: the pipeline's backlog and the ledger's health, in Prometheus text format.

Counts come from partial indexes (pending / failed / unpublished rows), never a
full table scan, so scraping is cheap; the invariant-breach counters are kept in
Redis by the sweeper and reported as absent when Redis is down.
"""

from __future__ import annotations

import redis
from flask import Blueprint, Response

from service.api import deps
from service.api.openapi import documented
from service.operations.sweep import BREACHES_LAST_KEY, BREACHES_TOTAL_KEY
from service.store import deliveries, inbound_events, outbox, webhook_endpoints

bp = Blueprint("metrics", __name__)


def _gauge(lines: list[str], name: str, help_text: str, samples: dict[str, float]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}")
    for labels, value in samples.items():
        lines.append(f"{name}{labels} {value:g}")


@bp.get("/metrics")
@documented(None, {"type": "string"}, content_type="text/plain", statuses=(503,))
def metrics() -> Response:
    conn = deps.get_conn()
    inbound = inbound_events.count_by_status(conn)
    pending = deliveries.counts(conn)
    lines: list[str] = []
    _gauge(
        lines,
        "tally_inbound_events",
        "Inbound Stripe events not yet processed (pending) or given up on (failed).",
        {f'{{status="{status}"}}': n for status, n in inbound.items()},
    )
    _gauge(
        lines,
        "tally_events_unpublished",
        "Outbox events not yet on the Redis stream.",
        {"": outbox.count_unpublished(conn)},
    )
    _gauge(
        lines,
        "tally_webhook_deliveries_pending",
        "Webhook deliveries still to succeed (due: whose next attempt is due now).",
        {'{state="all"}': pending["pending"], '{state="due"}': pending["due"]},
    )
    _gauge(
        lines,
        "tally_webhook_endpoints_disabled",
        "Webhook endpoints disabled after failing for their whole retry schedule.",
        {"": webhook_endpoints.count_disabled(conn)},
    )
    try:
        total, last = deps.redis_client().mget([BREACHES_TOTAL_KEY, BREACHES_LAST_KEY])
    except redis.RedisError:
        total = last = None
    if total is not None or last is not None:
        _gauge(
            lines,
            "tally_ledger_invariant_breaches_total",
            "Ledger invariant breaches found by the sweeper, summed over its checks.",
            {"": float(total or 0)},
        )
        _gauge(
            lines,
            "tally_ledger_invariant_breaches",
            "Ledger invariant breaches found by the sweeper's latest check.",
            {"": float(last or 0)},
        )
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
