"""The Flask application factory: settings, pool, Redis client, blueprints."""

from __future__ import annotations

import logging

from flask import Flask

from service import api, observability
from service.adapters import upstream
from service.api.ratelimit import RateLimiter
from service.config import Settings
from service.db import make_pool, pool_max_for
from service.queue import make_task_queue
from service.redis_client import connect_redis


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    observability.redact_values(settings.secrets)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Flask's own provider, DefaultJSONProvider, has sort_keys; app.json is typed as its base.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Under gunicorn's gthread workers a worker runs web_threads requests at once.
    pool_max = settings.pool_max_size or pool_max_for(settings.web_threads)
    pool = make_pool(settings.database_url, max_size=pool_max, name="web")
    # Opened here, after gunicorn forks its workers (never --preload).
    pool.open(wait=False)
    app.extensions["settings"] = settings
    app.extensions["pool"] = pool
    app.extensions["redis"] = connect_redis(settings.redis_url, timeout=0.5)
    app.extensions["rate_limiter"] = RateLimiter(
        app.extensions["redis"], settings.rate_limit_per_second
    )
    app.extensions["queue"] = make_task_queue(settings, app.extensions["redis"])
    app.extensions["upstream"] = upstream.from_settings(settings)
    api.register(app)
    # Under gunicorn (service/gunicorn_conf.py) logging is already JSON; elsewhere too.
    observability.configure_logging(logging.INFO, replace=False)
    return app
