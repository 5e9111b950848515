"""GET /metrics in Prometheus text format, and the metric and log line of every request.

A scrape reports two things:
- what this process group observed: request durations, and anything else recorded
  by service.observability, summed over every gunicorn worker in multiprocess mode;
- the pipeline's backlog and the sweeper's last completed pass, read from PostgreSQL
  at scrape time (one statement, see service/store/backlog.py), so it is right
  whichever process does the work; and
- the sweeper's invariant-breach counts, kept in Redis, and each consumer group's lag
  on the event stream (both absent while Redis is down).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Response, g, request
from marshmallow import fields
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from werkzeug.datastructures import EnvironHeaders, Headers

from service import observability
from service.adapters.stream import STREAM_KEY
from service.api import deps
from service.api.openapi import documented
from service.config import Settings
from service.db import TRANSIENT_ERRORS
from service.errors import AuthenticationFailed
from service.operations.sweep import BREACHES_LAST_KEY, BREACHES_TOTAL_KEY
from service.store import backlog

bp = Blueprint("metrics", __name__)
log = logging.getLogger("tally.request")

# Probes and scrapes arrive every few seconds; their lines are DEBUG, not INFO.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
@documented(None, fields.String(), content_type="text/plain", statuses=(401, 503))
def metrics() -> Response:
    token = deps.settings().metrics_token
    if token is not None:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            raise AuthenticationFailed(
                "GET /metrics needs the Authorization header 'Bearer <TALLY_METRICS_TOKEN>'."
            )
    registry = observability.multiprocess_registry() or REGISTRY
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_ScrapeTime(_backlog(), _breaches(), _stream_groups()))
    return Response(generate_latest(registry) + generate_latest(scraped), content_type=CONTENT_TYPE)


def _backlog() -> backlog.Backlog | None:
    try:
        return backlog.snapshot(deps.get_conn())
    except TRANSIENT_ERRORS as exc:
        # The request metrics still matter (they show the 503s): answer without these.
        logging.getLogger(__name__).warning("backlog not read for /metrics: %s", exc)
        return None


def _breaches() -> tuple[bytes | str | None, bytes | str | None]:
    try:
        total, last = deps.redis_client().mget([BREACHES_TOTAL_KEY, BREACHES_LAST_KEY])
    except redis.RedisError:
        return None, None
    return total, last


def _stream_groups() -> list[dict[str, Any]]:
    """XINFO GROUPS of the event stream: each consumer group's lag and pending count."""
    try:
        return deps.redis_client().xinfo_groups(STREAM_KEY)
    except redis.RedisError:  # Redis away, or no stream yet
        return []


class _ScrapeTime(Collector):
    def __init__(
        self,
        snapshot: backlog.Backlog | None,
        breaches: tuple[bytes | str | None, bytes | str | None],
        stream_groups: list[dict[str, Any]],
    ):
        self.snapshot = snapshot
        self.breaches = breaches
        self.stream_groups = stream_groups

    def collect(self) -> Iterator[Metric]:
        b = self.snapshot
        if b is not None:
            yield _labelled(
                "tally_inbound_events",
                "Inbound Stripe events not yet processed (pending) or given up on (failed).",
                "status",
                {"pending": b.inbound_pending, "failed": b.inbound_failed},
            )
            yield GaugeMetricFamily(
                "tally_inbound_oldest_pending_age_seconds",
                "Seconds the oldest due pending inbound event has waited "
                "(since received, or since its retry came due); 0 when none waits.",
                value=b.inbound_oldest_due_age,
            )
            yield GaugeMetricFamily(
                "tally_events_unpublished",
                "Outbox events not yet on the Redis stream.",
                value=b.events_unpublished,
            )
            yield GaugeMetricFamily(
                "tally_events_oldest_unpublished_age_seconds",
                "Seconds since the oldest unpublished event was created; 0 when none.",
                value=b.events_oldest_unpublished_age,
            )
            yield _labelled(
                "tally_webhook_deliveries_pending",
                "Webhook deliveries still to succeed (due: whose next attempt is due now).",
                "state",
                {"all": b.deliveries_pending, "due": b.deliveries_due},
            )
            yield GaugeMetricFamily(
                "tally_webhook_deliveries_oldest_due_age_seconds",
                "Seconds the oldest due webhook delivery has waited to be sent; 0 when none.",
                value=b.deliveries_oldest_due_age,
            )
            yield GaugeMetricFamily(
                "tally_webhook_endpoints_disabled",
                "Webhook endpoints disabled after failing for their whole retry schedule.",
                value=b.endpoints_disabled,
            )
            if b.sweep_completed_at is not None:
                # beat's health: alert on time() minus this growing past a few intervals.
                yield GaugeMetricFamily(
                    "tally_sweep_last_completed_timestamp_seconds",
                    "Unix time the sweeper (beat's pipeline.sweep, run by a worker) last "
                    "completed a pass.",
                    value=b.sweep_completed_at,
                )
        if self.stream_groups:
            groups = {_text(group["name"]): group for group in self.stream_groups}
            yield _labelled(
                "tally_stream_consumer_lag",
                "Entries of the event stream a consumer group has not read yet"
                " (absent for a group whose lag Redis cannot tell after trimming).",
                "group",
                {name: g["lag"] for name, g in groups.items() if g.get("lag") is not None},
            )
            yield _labelled(
                "tally_stream_consumer_pending",
                "Entries a consumer group has read but not acknowledged.",
                "group",
                {name: g["pending"] for name, g in groups.items()},
            )
        total, last = self.breaches
        if total is not None or last is not None:
            yield CounterMetricFamily(
                "tally_ledger_invariant_breaches",
                "Ledger invariant breaches found by the sweeper, summed over its checks.",
                value=float(total or 0),
            )
            yield GaugeMetricFamily(
                "tally_ledger_invariant_breaches_last",
                "Ledger invariant breaches found by the sweeper's latest check.",
                value=float(last or 0),
            )


def _labelled(
    name: str, documentation: str, label: str, values: dict[str, float]
) -> GaugeMetricFamily:
    """A gauge with one sample for each value of `label`."""
    gauge = GaugeMetricFamily(name, documentation, labels=[label])
    for value, sample in values.items():
        gauge.add_metric([value], sample)
    return gauge


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def request_started(request_id: str) -> None:
    """Before anything else runs for a request: its clock and its log context."""
    g.started = time.perf_counter()
    observability.reset_log_context(request_id=request_id)


def request_finished(response: Response) -> Response:
    """After every other after_request hook: observe the duration, log the request line."""
    duration = time.perf_counter() - g.get("started", time.perf_counter())
    # The route template, never the raw path: ids would make a series per object.
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    status = response.status_code
    observability.HTTP_REQUEST_SECONDS.labels(request.method, route, str(status)).observe(duration)
    ids = {k: v for k, v in (request.view_args or {}).items() if k.endswith("_id")}
    observability.bind(**ids)
    log.log(
        logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO,
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": status,
            "outcome": "ok" if status < 400 else "refused" if status < 500 else "error",
            "duration_ms": round(duration * 1000, 2),
            "client": client_address(request.remote_addr, request.headers, deps.settings()),
        },
    )
    # gunicorn's worker logs between requests; they belong to none.
    observability.reset_log_context()
    return response


# The trusted proxies' networks; None when every peer is trusted (`*`).
_Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None


def client_address(peer: str | None, headers: Headers, settings: Settings) -> str | None:
    """Who sent the request: the peer, or, when the peer is a trusted proxy
    (FORWARDED_ALLOW_IPS), the nearest untrusted address in X-Forwarded-For. Read from
    the right: each proxy appends the address it heard from, so only the entries that
    trusted proxies wrote can be believed, and anything left of them is the client's
    to forge."""
    trusted = settings.trusted_proxies
    if peer is None or not _is_trusted(peer, trusted):
        return peer
    hops = [
        hop.strip() for value in _forwarded_for(headers) for hop in value.split(",") if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop[:64]
    # Every hop trusted (`*`): the first is the client.
    return hops[0][:64] if hops else peer


def _forwarded_for(headers: Headers) -> list[str]:
    if isinstance(headers, EnvironHeaders):
        # A WSGI environ holds one value per header (the server joins repeated ones
        # with commas): one lookup, where getlist would scan every header of the request.
        value = headers.get("X-Forwarded-For")
        return [] if value is None else [value]
    return headers.getlist("X-Forwarded-For")


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> _Networks:
    """The trusted proxies as networks; None for `*` (gunicorn's "trust everyone")."""
    if "*" in trusted:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    # Peers are few (the proxies, or the clients of a bare server): parsing the address
    # and testing it against each network cost a tenth of a webhook's intake, every
    # request. A longer string (sent in X-Forwarded-For) is not kept.
    if len(address) > _CACHED_LENGTH:
        return _is_trusted_address.__wrapped__(address, trusted)
    return _is_trusted_address(address, trusted)


# An IPv6 address is at most 45 characters, more only with a zone (`%eth0`).
_CACHED_LENGTH = 64


@functools.lru_cache(maxsize=1024)
def _is_trusted_address(address: str, trusted: tuple[str, ...]) -> bool:
    networks = _networks(trusted)
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
