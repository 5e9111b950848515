"""The pieces `python -m bench` runs: Procfile processes, a private redis-server, scratch
databases, peak-RSS sampling, and rows cloned in bulk from one made through the API.

Processes start from their Procfile line exactly as bin/docker-entrypoint runs it
(`/bin/sh -c "exec <line>"`), so the benchmark measures what ships. The only edits
are to keep the benchmark private and on loopback: gunicorn binds 127.0.0.1 instead
of 0.0.0.0, beat keeps its schedule in a temporary file, and the reference apps swap
the WSGI target while keeping every other gunicorn setting.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.localenv import free_port  # noqa: E402

TALLY_APP = "'service.app:create_app()'"
# application_name of the backends serving a role's process: `tally-<role>`.
APP_PREFIX = "tally-"


def procfile_line(name: str, procfile: Path = ROOT / "Procfile") -> str:
    for line in procfile.read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"no {name!r} line in {procfile}")


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


class Stack:
    """Every process the benchmark starts, so that all of them are stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"}
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str, process: str, *, replace: dict[str, str] | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
        """Run the Procfile line `process` under the name `role` (e.g. "reference" runs
        the web line with another target). Unedited lines go through bin/docker-entrypoint."""
        line = procfile_line(process)
        edits = dict(replace or {})
        if process == "web":
            edits["--bind 0.0.0.0:"] = "--bind 127.0.0.1:"
        if process == "beat":
            edits["/tmp/celerybeat-schedule"] = str(self.logs / "celerybeat-schedule")
        changed = False
        for old, new in edits.items():
            if old not in line:
                raise ValueError(f"Procfile {process!r} line has no {old!r}: {line}")
            line = line.replace(old, new)
            changed = changed or old != new
        command = (
            ["/bin/sh", "-c", f"exec {line}"]
            if changed
            else [str(ROOT / "bin" / "docker-entrypoint"), process]
        )
        log = (self.logs / f"{role}.log").open("ab")
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            # PGAPPNAME (libpq): PostgreSQL's backends say which process they serve.
            env={
                **self.env,
                "PGAPPNAME": f"{APP_PREFIX}{role}",
                **(env or {}),
                "PROCFILE": str(ROOT / "Procfile"),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[role] = proc
        return proc

    def start_web(self, role: str, app: str = TALLY_APP) -> str:
        port = free_port()
        self.start(role, "web", replace={TALLY_APP: app}, env={"PORT": str(port)})
        wait_port(port)
        return f"http://127.0.0.1:{port}"

    def stop(self, role: str) -> None:
        proc = self.procs.pop(role, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        for role in list(self.procs):
            self.stop(role)


# -- peak RSS ---------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Every `interval` s, for each watched role: the highest VmHWM (peak RSS) of any one
    process in its tree, and the highest sum of VmRSS over the tree."""

    def __init__(self, stack: Stack, roles: tuple[str, ...], interval: float = 0.5) -> None:
        self.stack, self.roles, self.interval = stack, roles, interval
        self.process_peak_kb: dict[str, int] = dict.fromkeys(roles, 0)
        self.tree_peak_kb: dict[str, int] = dict.fromkeys(roles, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        for role in self.roles:
            proc = self.stack.procs.get(role)
            if proc is None or proc.poll() is not None:
                continue
            pids = _tree(proc.pid)
            hwm = max((_status_kb(p, "VmHWM") for p in pids), default=0)
            total = sum(_status_kb(p, "VmRSS") for p in pids)
            self.process_peak_kb[role] = max(self.process_peak_kb[role], hwm)
            self.tree_peak_kb[role] = max(self.tree_peak_kb[role], total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


# -- Redis and PostgreSQL ---------------------------------------------------------------


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A freshly migrated database `name` on the local server, dropped afterwards."""
    from devtools.localenv import ensure_local_services
    from service.migrate import migrate

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    urls = ensure_local_services(ROOT / ".tally-data", database_name=name, env=env)
    dsn = make_conninfo(urls["DATABASE_URL"], dbname=name)
    admin = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    migrate(dsn)
    try:
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- rows in bulk -------------------------------------------------------------------------


def make_template(app: Any, api_key: str, *, attach: bool, finalize: bool = True) -> dict[str, str]:
    """One customer with a one-item invoice (finalized unless told otherwise) and, if
    `attach`, a PaymentIntent attached to it, made through the API in-process."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_key}"}

    def post(path: str, data: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, data=data, headers=headers)
        assert response.status_code == 200, response.json
        return response.json  # type: ignore[no-any-return]

    cus = post("/v1/customers", {"email": "bench@example.com"})["id"]
    post("/v1/invoiceitems", {"customer": cus, "amount": 1299, "currency": "usd"})
    invoice = post("/v1/invoices", {"customer": cus, "pending_invoice_items_behavior": "include"})
    ids = {"customer": cus, "invoice": invoice["id"]}
    if finalize:
        post(f"/v1/invoices/{invoice['id']}/finalize", {})
        pi = post("/v1/payment_intents", {"amount": 1299, "currency": "usd", "customer": cus})
        ids["payment_intent"] = pi["id"]
        if attach:
            post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
    return ids


# Per table: the template row's key and the columns each clone replaces (SQL over k).
CLONES = {
    "customers": ("id", "customer", {
        "id": "'cus_' || :tag || k",
        "invoice_prefix": "upper(:tag) || lpad(k::text, 8, '0')",
    }),
    "invoice_items": ("invoice", "invoice", {
        "id": "'ii_' || :tag || k", "line_id": "'il_' || :tag || k",
        "customer": "'cus_' || :tag || k", "invoice": "'in_' || :tag || k",
    }),
    "invoices": ("id", "invoice", {
        "id": "'in_' || :tag || k", "customer": "'cus_' || :tag || k",
        "number": "CASE WHEN number IS NULL THEN NULL"
                  " ELSE upper(:tag) || lpad(k::text, 8, '0') || '-0001' END",
    }),
    "payment_intents": ("id", "payment_intent", {
        "id": "'pi_' || :tag || k", "customer": "'cus_' || :tag || k",
    }),
    "invoice_payments": ("payment_intent", "payment_intent", {
        "id": "'inpay_' || :tag || k", "invoice": "'in_' || :tag || k",
        "payment_intent": "'pi_' || :tag || k",
    }),
}  # fmt: skip


def clone(conn: psycopg.Connection[Any], template: dict[str, str], tag: str, count: int,
          tables: tuple[str, ...]) -> None:  # fmt: skip
    """`count` copies of the template's rows in `tables`, ids `<prefix>_<tag><k>` for k in
    1..count, every other column as the template has it. `tag` is [A-Z0-9]."""
    for table in tables:
        key, template_key, replaced = CLONES[table]
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = %s AND column_name <> 'seq'"
                " AND is_generated = 'NEVER' AND identity_generation IS NULL"
                " ORDER BY ordinal_position",
                (table,),
            )
        ]
        select = sql.SQL(", ").join(
            sql.SQL(replaced[c].replace(":tag", "%(tag)s")) if c in replaced else sql.Identifier(c)
            for c in columns
        )
        query = sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {select}"
            " FROM {table}, generate_series(1, %(count)s) AS k WHERE {key} = %(template)s"
            " ORDER BY k"
        ).format(
            table=sql.Identifier(table),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            select=select,
            key=sql.Identifier(key),
        )
        conn.execute(query, {"tag": tag, "count": count, "template": template[template_key]})


def pending_successes(conn: psycopg.Connection[Any], tag: str, count: int, body: str) -> None:
    """Store `count` payment_intent.succeeded events for the clones `tag`, as the intake
    stores them (pending, in k order); `body` is one such event as JSON."""
    conn.execute(
        """
        INSERT INTO inbound_events (id, type, livemode, payload)
        SELECT 'evt_' || %(tag)s || k, 'payment_intent.succeeded', false,
               jsonb_set(jsonb_set(jsonb_set(%(body)s::jsonb,
                   '{id}', to_jsonb('evt_' || %(tag)s || k)),
                   '{data,object,id}', to_jsonb('pi_' || %(tag)s || k)),
                   '{data,object,customer}', to_jsonb('cus_' || %(tag)s || k))
        FROM generate_series(1, %(count)s) AS k ORDER BY k
        """,
        {"tag": tag, "count": count, "body": body},
    )
