"""Settings read once from the environment; the only module that reads os.environ."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from service.domain.signatures import WebhookSecrets

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"
DEFAULT_DATABASE_URL = "postgresql:///tally"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
# The longest an API request waits for upstream Stripe before answering 503.
MAX_STRIPE_API_TIMEOUT = 5.0

# Long enough for a busy table's short transactions to drain, short enough that the
# queries queued behind a migration waiting for its lock are delayed by at most this.
DEFAULT_MIGRATION_LOCK_TIMEOUT = 2.0

# A week: a stream consumer down for longer catches up with `tally events republish`.
DEFAULT_STREAM_RETENTION = 7 * 24 * 3600.0

# Threads per gunicorn worker (gthread): more than a few slow clients can hold at once.
DEFAULT_WEB_THREADS = 8
# Whose X-Forwarded-* headers are believed (gunicorn's own default and variable).
DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"

# About three days of exponential backoff, as Stripe retries its own webhooks.
DEFAULT_RETRY_SCHEDULE = (60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)


# Logged once by each process that reads its settings while STRIPE_WEBHOOK_SECRETS is set.
EITHER_MODE_SECRETS_WARNING = (
    "STRIPE_WEBHOOK_SECRETS verifies inbound events of either mode, so whoever holds the "
    "test-mode signing secret can sign a live-mode event. Set STRIPE_WEBHOOK_SECRETS_TEST "
    "and STRIPE_WEBHOOK_SECRETS_LIVE to the signing secrets of Stripe's test-mode and "
    "live-mode endpoints instead, and unset STRIPE_WEBHOOK_SECRETS."
)


# Where `bin/dev` keeps its data (embedded servers, dev.env): the checkout's .tally-data,
# which only an editable install (bin/dev's .venv) has beside its source.
DEFAULT_DEV_DATA = Path(__file__).resolve().parent.parent / ".tally-data"


def dev_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`bin/dev`'s data directory (TALLY_DEV_DATA, for tests; else the checkout's)."""
    return Path(environ.get("TALLY_DEV_DATA") or DEFAULT_DEV_DATA)


def read_dev_env(path: Path | None = None) -> dict[str, str]:
    """What `bin/dev` keeps in dev.env (NAME=value lines): its URL and servers, its key
    and secret; empty when there is none."""
    path = path or dev_data_dir() / "dev.env"
    saved: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                saved[name.strip()] = value.strip()
    return saved


def adopt_dev_env() -> None:
    """Fill what the environment does not set from `bin/dev`'s dev.env, so every `tally`
    subcommand finds bin/dev's servers (the embedded PostgreSQL's port changes on each
    start) with no DATABASE_URL to copy; a variable that is set wins."""
    for name, value in read_dev_env().items():
        os.environ.setdefault(name, value)


class ConfigError(Exception):
    """The environment is missing something the service cannot start without."""


def database_url(environ: Mapping[str, str] = os.environ) -> str:
    """The PostgreSQL DSN alone: the operator command `tally` needs no API keys."""
    return environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def url_password(url: str) -> str | None:
    """The password in a PostgreSQL DSN (URL or `key=value` form) or a Redis URL."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        password = urlsplit(url).password
        return unquote(password) if password else None
    try:
        return str(conninfo_to_dict(url).get("password") or "") or None
    except psycopg.ProgrammingError:
        return None  # not a DSN: connecting will say so


def redis_url(environ: Mapping[str, str] = os.environ) -> str:
    """The Redis URL alone, for `tally` to wake the workers."""
    return environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def stream_retention(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds the event stream keeps an entry (TALLY_STREAM_RETENTION)."""
    return _positive("TALLY_STREAM_RETENTION", environ, DEFAULT_STREAM_RETENTION)


def migration_lock_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds a migration waits for a table lock before backing off (service/migrate.py)."""
    seconds = float(environ.get("TALLY_MIGRATION_LOCK_TIMEOUT", DEFAULT_MIGRATION_LOCK_TIMEOUT))
    if seconds <= 0:
        # 0 would mean "wait forever" to PostgreSQL, the very thing the setting prevents.
        raise ConfigError("TALLY_MIGRATION_LOCK_TIMEOUT must be more than 0")
    return seconds


def _positive(name: str, environ: Mapping[str, str], default: float) -> float:
    try:
        value = float(environ.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0")
    return value


def web_threads(environ: Mapping[str, str] = os.environ) -> int:
    """Threads per web worker, for gunicorn's configuration and the web's pool."""
    return int(environ.get("WEB_THREADS", DEFAULT_WEB_THREADS))


def trusted_proxies(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """Addresses or networks of the proxies whose X-Forwarded-For and X-Forwarded-Proto
    are believed: FORWARDED_ALLOW_IPS, the variable gunicorn itself reads."""
    proxies = _csv(environ.get("FORWARDED_ALLOW_IPS", DEFAULT_TRUSTED_PROXIES))
    for entry in proxies:
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(
                    f"FORWARDED_ALLOW_IPS: {entry!r} is not an address or network"
                ) from None
    return proxies


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Retention:
    """How long history is kept (service/operations/prune.py); ledger objects always are."""

    events_days: float = 30.0  # events, with their webhook deliveries and attempts
    inbound_days: float = 30.0  # inbound Stripe events, once processed or ignored
    # Stored Idempotency-Key results: Stripe keeps them "at least 24 hours".
    idempotency_hours: int = 24


def retention(environ: Mapping[str, str] = os.environ) -> Retention:
    """The retention windows alone: `tally prune` needs no API keys."""
    default = Retention()
    return Retention(
        events_days=_positive("TALLY_EVENT_RETENTION_DAYS", environ, default.events_days),
        inbound_days=_positive("TALLY_INBOUND_RETENTION_DAYS", environ, default.inbound_days),
        idempotency_hours=int(
            _positive("TALLY_IDEMPOTENCY_RETENTION_HOURS", environ, default.idempotency_hours)
        ),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    api_keys: tuple[str, ...] = ()
    webhook_secrets: WebhookSecrets = field(default_factory=WebhookSecrets)
    webhook_tolerance: int = 300
    delivery_retry_schedule: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: float = 10.0
    allow_private_webhook_urls: bool = False
    inbound_grace_seconds: int = 10
    # Claims of an inbound event that never settled (its worker died) before it is
    # quarantined as `failed` (operations/process_inbound.py).
    inbound_max_claims: int = 5
    sweep_interval: float = 5.0
    stripe_api_key: str | None = None
    stripe_api_base: str = DEFAULT_STRIPE_API_BASE
    stripe_api_timeout: float = MAX_STRIPE_API_TIMEOUT
    open_payment_refetch_after: int = 3600
    # Connections per process; None: what the process can use at once (db.pool_max_for).
    pool_max_size: int | None = None
    web_threads: int = DEFAULT_WEB_THREADS
    trusted_proxies: tuple[str, ...] = _csv(DEFAULT_TRUSTED_PROXIES)
    # A bearer token GET /metrics requires; None leaves it open.
    metrics_token: str | None = None
    # Seconds the event stream keeps an entry (trimmed by age; PostgreSQL keeps every
    # event, and `tally events republish` puts them back).
    stream_retention: float = DEFAULT_STREAM_RETENTION
    retention: Retention = Retention()
    max_body_bytes: int = 256 * 1024
    # Requests per second per API key; 0 is unlimited. from_env defaults to Stripe's
    # live-mode limit (100); a Settings built in code (tests) sets its own.
    rate_limit_per_second: int = 0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured credential, for the logs to redact whatever its shape."""
        optional = [
            self.stripe_api_key,
            self.metrics_token,
            url_password(self.database_url),
            url_password(self.redis_url),
        ]
        return (*self.api_keys, *self.webhook_secrets.all, *filter(None, optional))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        api_keys = _csv(environ.get("TALLY_API_KEYS"))
        if not api_keys:
            raise ConfigError("TALLY_API_KEYS is not set: give at least one sk_test_ key")
        bad = [k for k in api_keys if not k.startswith(("sk_test_", "sk_live_"))]
        if bad:
            raise ConfigError("TALLY_API_KEYS entries must start with sk_test_ or sk_live_")
        schedule = _csv(environ.get("TALLY_DELIVERY_RETRY_SCHEDULE"))
        stripe_api_timeout = float(environ.get("TALLY_STRIPE_TIMEOUT", MAX_STRIPE_API_TIMEOUT))
        if not 0 < stripe_api_timeout <= MAX_STRIPE_API_TIMEOUT:
            raise ConfigError(
                f"TALLY_STRIPE_TIMEOUT must be more than 0 and at most {MAX_STRIPE_API_TIMEOUT:g}"
            )
        return cls(
            database_url=database_url(environ),
            redis_url=redis_url(environ),
            api_keys=api_keys,
            webhook_secrets=_webhook_secrets(environ),
            webhook_tolerance=_webhook_tolerance(environ),
            delivery_retry_schedule=(
                tuple(int(float(s)) for s in schedule) if schedule else DEFAULT_RETRY_SCHEDULE
            ),
            delivery_timeout=float(environ.get("TALLY_DELIVERY_TIMEOUT", "10")),
            allow_private_webhook_urls=environ.get("TALLY_ALLOW_PRIVATE_WEBHOOK_URLS") == "1",
            inbound_grace_seconds=int(environ.get("TALLY_INBOUND_GRACE_SECONDS", "10")),
            inbound_max_claims=int(environ.get("TALLY_INBOUND_MAX_CLAIMS", "5")),
            sweep_interval=float(environ.get("TALLY_SWEEP_INTERVAL", "5")),
            # Stripe's own names first; the TALLY_ ones are what earlier versions read.
            stripe_api_key=environ.get("STRIPE_API_KEY")
            or environ.get("TALLY_STRIPE_API_KEY")
            or None,
            stripe_api_base=environ.get("STRIPE_API_BASE")
            or environ.get("TALLY_STRIPE_API_BASE")
            or DEFAULT_STRIPE_API_BASE,
            stripe_api_timeout=stripe_api_timeout,
            open_payment_refetch_after=int(environ.get("TALLY_OPEN_PAYMENT_REFETCH_AFTER", "3600")),
            pool_max_size=int(environ["TALLY_DB_POOL_MAX"])
            if environ.get("TALLY_DB_POOL_MAX")
            else None,
            web_threads=web_threads(environ),
            trusted_proxies=trusted_proxies(environ),
            metrics_token=environ.get("TALLY_METRICS_TOKEN") or None,
            stream_retention=stream_retention(environ),
            retention=retention(environ),
            rate_limit_per_second=int(environ.get("TALLY_RATE_LIMIT", "100")),
        )


def _webhook_secrets(environ: Mapping[str, str]) -> WebhookSecrets:
    secrets = WebhookSecrets(
        test=_csv(environ.get("STRIPE_WEBHOOK_SECRETS_TEST")),
        live=_csv(environ.get("STRIPE_WEBHOOK_SECRETS_LIVE")),
        either_mode=_csv(environ.get("STRIPE_WEBHOOK_SECRETS")),
    )
    if set(secrets.test) & set(secrets.live):
        raise ConfigError(
            "A secret is in both STRIPE_WEBHOOK_SECRETS_TEST and STRIPE_WEBHOOK_SECRETS_LIVE: "
            "each mode's Stripe endpoint has its own signing secret"
        )
    if secrets.either_mode:
        log.warning(EITHER_MODE_SECRETS_WARNING)
    return secrets


def _webhook_tolerance(environ: Mapping[str, str]) -> int:
    """Seconds a signed webhook's timestamp may lag. Never off: without it a captured
    event could be replayed at any time."""
    text = environ.get("TALLY_WEBHOOK_TOLERANCE", "300")
    try:
        tolerance = int(text)
    except ValueError:
        tolerance = 0
    if tolerance <= 0:
        raise ConfigError(
            "TALLY_WEBHOOK_TOLERANCE must be a whole number of seconds, more than 0 "
            "(Stripe's libraries use 300)"
        )
    return tolerance
