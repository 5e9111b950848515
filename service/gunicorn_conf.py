"""gunicorn settings for the web process: `gunicorn -c python:service.gunicorn_conf ...`.

Logs: every record, gunicorn's own included, is one JSON line (service.observability).
gunicorn's access log is off: its default format writes the Basic-auth user, which
is the API key, and the app already logs one line per request with its route,
status, duration and request id (service/api/metrics.py).

Metrics: the workers write to a multiprocess directory the master creates and
clears before forking them; a worker that exits is marked dead. /metrics sums them.

Slow clients: "When using the default synchronous workers you must ensure the proxy
buffers slow clients; otherwise Gunicorn becomes vulnerable to denial-of-service
attacks" (gunicorn.org/deploy). Measured: four clients trickling their headers took
both sync workers and /healthz went unanswered; gthread workers give each connection
a thread, and answered in tens of milliseconds with the same four
(bench/slow_clients.py, README "Slow clients and proxies"). Many more slow clients
than threads still need a buffering proxy in front.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn.glogging import Logger

from service import observability
from service.config import ConfigError, Settings, trusted_proxies, web_threads


class JsonLogger(Logger):
    """gunicorn's logger with its records sent to the root logger's JSON handler."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
        observability.configure_logging(self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO))
        # The master logs its whole configuration at debug level, `-e` values included,
        # before it forks the workers that read Settings themselves.
        try:
            settings = Settings.from_env({**os.environ, **cfg.env})
        except (ConfigError, ValueError):
            return  # the workers refuse to start, and say why
        observability.redact_values(settings.secrets)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Nothing: the app logs each request (without credentials) itself."""


logger_class = JsonLogger
accesslog = None

worker_class = "gthread"
threads = web_threads()
# A worker is replaced after this many requests, plus up to the jitter at random so
# that workers do not restart together: whatever a long-lived process leaks stays bounded.
max_requests = 10000
max_requests_jitter = 1000
# On SIGTERM, requests in hand get this long (a request takes at most about 20 s:
# statement_timeout 15 s, upstream Stripe 5 s), inside the 30 s a platform waits
# before SIGKILL.
graceful_timeout = 25
# X-Forwarded-Proto is believed only from these; the request log's client address
# honours X-Forwarded-For from the same list (service/api/metrics.py).
forwarded_allow_ips = ",".join(trusted_proxies())


def on_starting(server: Any) -> None:
    observability.prepare_multiprocess_dir("web")


def child_exit(server: Any, worker: Any) -> None:
    observability.mark_process_dead(worker.pid)
