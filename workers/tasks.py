"""Celery tasks: each borrows a connection and delegates to one operation."""

from __future__ import annotations

import logging
import time

from service.db import TRANSIENT_ERRORS
from service.operations.deliver import deliver
from service.operations.sweep import Upstream, sweep
from workers.app import app, resources
from workers.drain import drain, relay

log = logging.getLogger(__name__)

DRAIN_INBOUND = "inbound.drain"
PUBLISH_EVENTS = "events.publish"
SEND_DELIVERY = "deliveries.send"
SWEEP = "pipeline.sweep"

_retry = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


def enqueue_delivery(delivery_id: int, lease: int) -> None:
    send_delivery.apply_async((delivery_id, lease))


def enqueue_drain() -> None:
    drain_inbound.apply_async(expires=60)


@app.task(name=DRAIN_INBOUND, **_retry)
def drain_inbound() -> int:
    """Process pending inbound events until none is due (the sweeper's fallback)."""
    res = resources()
    with res.pool.connection() as conn:
        done = drain(conn)
        if done:
            relay(conn, res.redis, enqueue_delivery)
    return done


@app.task(name=PUBLISH_EVENTS, **_retry)
def publish_events() -> None:
    res = resources()
    with res.pool.connection() as conn:
        relay(conn, res.redis, enqueue_delivery)


@app.task(name=SEND_DELIVERY, **_retry)
def send_delivery(delivery_id: int, lease: int | None = None) -> str:
    res = resources()
    with res.pool.connection() as conn:
        outcome = deliver(
            conn,
            delivery_id,
            lease=lease,
            timeout=res.settings.delivery_timeout,
            schedule=res.settings.delivery_retry_schedule,
            allow_private=res.settings.allow_private_webhook_urls,
            now=int(time.time()),
        )
    log.info("delivery %s: %s", delivery_id, outcome)
    return outcome


@app.task(name=SWEEP, **_retry)
def sweep_pipeline() -> None:
    res = resources()
    s = res.settings
    upstream = (
        Upstream(s.stripe_api_key, s.stripe_api_base, s.open_payment_refetch_after)
        if s.stripe_api_key
        else None
    )
    with res.pool.connection() as conn:
        report = sweep(
            conn,
            res.redis,
            grace_seconds=s.inbound_grace_seconds,
            enqueue_drain=enqueue_drain,
            enqueue_delivery=enqueue_delivery,
            upstream=upstream,
            now=int(time.time()),
        )
    if report.stale_inbound or report.published or report.dispatched or report.breaches:
        log.info("sweep: %s", report)
