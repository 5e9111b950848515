"""Settings read once from the environment; the only module that reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

API_VERSION = "2026-10-28.endive"
DEFAULT_DATABASE_URL = "postgresql:///tally"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
# The longest an API request waits for upstream Stripe before answering 503.
MAX_STRIPE_API_TIMEOUT = 5.0

# About three days of exponential backoff, as Stripe retries its own webhooks.
DEFAULT_RETRY_SCHEDULE = (60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)


class ConfigError(Exception):
    """The environment is missing something the service cannot start without."""


def database_url(environ: Mapping[str, str] = os.environ) -> str:
    """The PostgreSQL DSN alone: the operator command `tally` needs no API keys."""
    return environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url(environ: Mapping[str, str] = os.environ) -> str:
    """The Redis URL alone, for `tally` to wake the workers."""
    return environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    api_keys: tuple[str, ...] = ()
    webhook_secrets: tuple[str, ...] = ()
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
    pool_max_size: int = 10
    max_body_bytes: int = 256 * 1024
    # Requests per second per API key; 0 is unlimited. from_env defaults to Stripe's
    # live-mode limit (100); a Settings built in code (tests) sets its own.
    rate_limit_per_second: int = 0

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
            webhook_secrets=_csv(environ.get("STRIPE_WEBHOOK_SECRETS")),
            webhook_tolerance=int(environ.get("TALLY_WEBHOOK_TOLERANCE", "300")),
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
            pool_max_size=int(environ.get("TALLY_DB_POOL_MAX", "10")),
            rate_limit_per_second=int(environ.get("TALLY_RATE_LIMIT", "100")),
        )
