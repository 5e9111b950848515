# Tally image: one non-root image for every Procfile process. The entrypoint runs
# the Procfile line a process name stands for (bin/docker-entrypoint), so
#   docker run IMAGE            web (the default)
#   docker run IMAGE release    python -m service.migrate, then exits
#   docker run IMAGE worker     (or deliveries, beat: exactly one beat)
# and any other command runs as given. compose.yaml wires them all up.

# The base is an argument so the image can be built where no registry is
# reachable: bin/image-check passes a Debian bookworm base made with debootstrap.
# Any base with python3 (>= 3.11, with venv), sh, sed, groupadd and useradd works.
ARG BASE=python:3.11-slim

# --- builder: resolve and install the dependencies into a self-contained venv ---
FROM ${BASE} AS builder
# No .pyc files in the layer, no pip cache or version check: smaller, quieter build.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A venv at a fixed path can be copied as a whole into the runtime stage.
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only pyproject.toml and constraints.txt (the exact versions, bin/lock) first, so
# this layer (the slow one) is rebuilt only when the dependencies change, not on
# every source edit. All dependencies ship wheels (psycopg[binary] bundles libpq),
# so no compiler or libpq-dev is needed. The declared dependencies only (no extras:
# the embedded servers and test tools are for laptops and CI).
COPY pyproject.toml constraints.txt ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' >requirements.txt \
    && pip install --constraint constraints.txt --requirement requirements.txt
# Then Tally itself, installed as any package is: service and workers with the SQL
# migrations inside (setup.py), and the `tally` command. Not devtools/ (bin/dev's),
# which .dockerignore keeps out of the build context as well. Then the installers go:
# the runtime never uses them.
COPY setup.py ./
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-deps . \
    && pip uninstall --yes pip setuptools wheel

# --- runtime: the venv (Tally installed in it) and the Procfile; no compiler, no installer ---
FROM ${BASE} AS runtime
# Unbuffered output reaches the log collector at once; no .pyc writes into the
# root-owned venv.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    TALLY_WORKER_METRICS_PORT=9100
# An unprivileged user with a fixed id, so Kubernetes' runAsNonRoot can verify it
# and mounted volumes can be chowned to it. The service needs no root.
RUN groupadd --system --gid 10001 tally \
    && useradd --system --uid 10001 --gid tally --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tally
# The ready venv from the builder (same base, so its interpreter links resolve),
# root-owned: tally can read but not alter the code and the migrations.
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The entrypoint and the Procfile it reads: process commands are written only there.
COPY bin/docker-entrypoint /usr/local/bin/docker-entrypoint
COPY Procfile ./
USER 10001:10001
# The web process's port ($PORT, default 8000), and the one a Celery process serves
# its metrics on ($TALLY_WORKER_METRICS_PORT): one process per container, so one port.
EXPOSE 8000 9100
# Liveness of the web process (no dependency checked, as /healthz promises).
# compose.yaml replaces it for the Celery processes and turns it off for beat.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)" || exit 1
# Exec form: the entrypoint execs the process, which is PID 1 and gets SIGTERM.
ENTRYPOINT ["docker-entrypoint"]
CMD ["web"]
