# Tally image: one image for every Procfile process. The default command is the
# web process; run the others by overriding it, e.g.
#   docker run IMAGE python -m service.migrate            (release)
#   docker run IMAGE celery -A workers worker -Q inbound,events -l info     (worker)
#   docker run IMAGE celery -A workers worker -Q deliveries -l info          (deliveries)
#   docker run IMAGE celery -A workers beat -l info --schedule /tmp/celerybeat-schedule

# --- builder: resolve and install the dependencies into a self-contained venv ---
FROM python:3.11-slim AS builder
# No .pyc files in the layer, no pip cache or version check: smaller, quieter build.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A venv at a fixed path can be copied as a whole into the runtime stage.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only pyproject.toml first, so this layer (the slow one) is rebuilt only when the
# dependencies change, not on every source edit. All dependencies ship wheels
# (psycopg[binary] bundles libpq), so no compiler or libpq-dev is needed.
COPY pyproject.toml ./
# Install the declared dependencies (no extras: the embedded servers and test
# tools are for laptops and CI), then drop the project itself: the runtime runs
# the source from /app, where service.migrate finds /app/migrations.
RUN pip install . && pip uninstall --yes tally

# --- runtime: the venv plus the source, nothing else ---
FROM python:3.11-slim AS runtime
# Unbuffered output reaches the log collector at once; no .pyc writes into the
# read-only-by-intent source tree.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PORT=8000 \
    WEB_CONCURRENCY=2
# An unprivileged user: the service needs no root, so a compromise gets none.
RUN groupadd --system tally && useradd --system --gid tally --no-create-home tally
# The ready venv from the builder (same base image, so the interpreter paths match).
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Application code and SQL migrations; root-owned, so tally can read but not alter them.
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
USER tally
# Documentation of the port the web process listens on ($PORT, default 8000).
EXPOSE 8000
# The Procfile's web line. Exec form (no shell), so gunicorn is PID 1 and gets
# SIGTERM directly; gunicorn itself binds 0.0.0.0:$PORT and takes its worker
# count from $WEB_CONCURRENCY when no --bind/--workers is given.
CMD ["gunicorn", "service.app:create_app()", "--timeout", "30", "--access-logfile", "-"]
