"""The ceiling of backlog crediting: pgbench running Tally's own crediting transaction.

One pgbench transaction is one batch of the worker's (service/operations/
process_inbound.py), with the statements the worker sends, in its order, taken from
the store modules they live in (their column lists are imported, so the two cannot
drift apart silently):

    claim_due                           inbound_events ... FOR UPDATE SKIP LOCKED
    lock_payment_intents                batch_locks: PaymentIntents by id
    lock_invoices_with_open_payments    batch_locks: their invoices by id
    the batch's credits, set-wise (operations/crediting.py), three statements:
      payment_intents.apply_updates     upsert of every mirror, over a JSON array
      open_payments_of_payment_intents  their open invoice payments, the invoices
                                        locked, each invoice's lines
      invoices.apply_credits            payments paid + invoices' amounts/status,
                                        over arrays
    events.add_all                      every credit's events, outbox and deliveries
                                        (here each event carries its own copy of its
                                        object, which Tally sends once per credit: a
                                        little more parsing than Tally's)
    settle                              inbound_events outcome, one statement
    COMMIT

What pgbench leaves out is exactly what Tally adds on top of PostgreSQL: Celery,
Python (JSON, rendering, psycopg), the connection pool. Event bodies are real ones
from the Tally run, passed as parameters (`-D`) as psycopg sends them; ids come from
the block of k each batch takes from a sequence (Tally gets them from the claimed
payloads), so every batch credits fresh, open payments.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from service.domain.ledger import PAYABLE_STATUSES, TERMINAL_PI_STATUSES
from service.render.invoices import EMBEDDED_LINES
from service.store import credits as store_credits
from service.store import events, payment_intents

TAG = "G"  # the pgbench clones: pi_G1, in_G1, ...


def _ids(prefix: str) -> str:
    return f"ARRAY(SELECT '{prefix}_{TAG}' || g FROM generate_series(:lo::int, :hi::int) AS g)"


def _array(values: tuple[str, ...]) -> str:
    return "'{" + ",".join(values) + "}'"


def _statement(query: str | bytes, **values: str) -> str:
    """A store statement with each parameter %(name)s written in as `values[name]`."""
    text = query.decode() if isinstance(query, bytes) else query
    for name, value in values.items():
        text = text.replace(f"%({name})s", value)
    if "%(" in text:
        raise ValueError(f"a parameter left unwritten: {text}")
    return text.strip() + ";\n"


def script(batch: int, event_types: list[str]) -> str:
    """The pgbench script of one batch of `batch` successes, each writing the events
    `event_types` (bodies in variables data1..dataN)."""
    # The worker sends the batch's events as one JSON array (json_to_recordset); pgbench
    # cannot build one from its variables (and takes at most 256 per statement), so the
    # same rows come from a cross join of the batch's ks and the event types.
    types = ", ".join(f"({n}, '{t}', :data{n})" for n, t in enumerate(event_types, 1))
    # The batch's credits are the store's own statements, their parameters written in
    # as SQL over the batch's ks: the mirrors' JSON array, the ids of the clones.
    incoming = f"""(
        SELECT jsonb_agg(jsonb_build_object('id', 'pi_{TAG}' || g, 'livemode', false,
            'amount', 1299, 'amount_received', 1299, 'currency', 'usd',
            'customer', 'cus_{TAG}' || g, 'description', NULL, 'status', 'succeeded',
            'cancellation_reason', NULL, 'canceled_at', NULL, 'metadata', '{{}}'::jsonb,
            'created', :now::bigint))
        FROM generate_series(:lo::int, :hi::int) AS g)"""
    credits = (
        _statement(
            payment_intents.APPLY_UPDATES, pis=incoming, terminal=_array(TERMINAL_PI_STATUSES)
        )
        + _statement(
            store_credits.OPEN_PAYMENTS_OF["payment_intent"],
            ids=_ids("pi"),
            lines=str(EMBEDDED_LINES + 1),
        )
        + _statement(
            store_credits.CREDIT_WITH["pay_open"],
            invoices=_ids("in"),
            payments=_ids("inpay"),
            amounts=f"array_fill(1299::bigint, ARRAY[{batch}])",
            now=":now::bigint",
            payable=_array(PAYABLE_STATUSES),
            out_of_band="false",
        )
    )
    add_events = f"""WITH event AS (
    INSERT INTO events (id, livemode, type, api_version, created, data,
                        request_id, idempotency_key)
    SELECT 'evt_{TAG}' || :lo::int + i || '_' || n, false, type, '2026-10-28.endive',
           :now::bigint, data::json, NULL, NULL
    FROM generate_series(0, {batch - 1}) AS i, (VALUES {types}) AS t (n, type, data)
    ORDER BY i, n
    RETURNING seq, id, livemode, type
),"""
    add_events += events.FAN_OUT.rstrip() + ";\n"
    return f"""\\set now {int(time.time())}
SELECT nextval('bench_batches') AS b \\gset
\\set lo :b * {batch} + 1
\\set hi :lo + {batch - 1}
BEGIN;
SELECT id, type, payload, attempts
FROM inbound_events
WHERE status = 'pending' AND next_attempt_at <= now() AND seq BETWEEN :lo::bigint AND :hi::bigint
ORDER BY seq
LIMIT {batch}
FOR UPDATE SKIP LOCKED;
SELECT id FROM payment_intents WHERE id = ANY({_ids("pi")}) ORDER BY id FOR UPDATE;
SELECT i.id FROM invoices i
WHERE i.id IN (SELECT ip.invoice FROM invoice_payments ip
               WHERE ip.payment_intent = ANY({_ids("pi")}) AND ip.status = 'open')
ORDER BY i.id
FOR UPDATE OF i;
{credits}{add_events}UPDATE inbound_events e
SET status = v.status,
    attempts = e.attempts + 1,
    last_error = v.error,
    processed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE now() END,
    next_attempt_at = CASE WHEN v.status = 'pending'
        THEN now() + make_interval(secs => v.retry_in) ELSE e.next_attempt_at END
FROM unnest({_ids("evt")}, array_fill('processed'::text, ARRAY[{batch}]),
            array_fill(NULL::text, ARRAY[{batch}]), array_fill(0::float8, ARRAY[{batch}]))
     AS v (id, status, error, retry_in)
WHERE e.id = v.id;
COMMIT;
"""


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None
    )
    if not found:
        raise RuntimeError("pgbench not found (apt-get install postgresql-contrib)")
    return str(found)


def run(dsn: str, *, count: int, batch: int, clients: int, samples: list[tuple[str, str]],
        workdir: Path) -> dict[str, Any]:  # fmt: skip
    """Credit the `count` pending successes of the clones TAG (1..count, inbound seq = k)
    with pgbench at `clients` connections; `samples` are (type, data JSON) of the events
    one credit writes. Returns credits/s and pgbench's own figures."""
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS bench_batches MINVALUE 0 START 0")
        first = conn.execute("SELECT min(seq) FROM inbound_events").fetchone()
        assert first is not None and first[0] == 1, "pgbench expects inbound seq = k"
        conn.execute("VACUUM ANALYZE")
    path = workdir / "crediting.pgbench"
    path.write_text(script(batch, [t for t, _ in samples]))
    params = conninfo_to_dict(dsn)
    transactions = count // (batch * clients)
    command = [
        pgbench_binary(), "--no-vacuum", "-M", "prepared", "-n",
        "-c", str(clients), "-j", str(clients), "-t", str(transactions), "-f", str(path),
    ]  # fmt: skip
    for n, (_, data) in enumerate(samples, 1):
        command += ["-D", f"data{n}={data}"]
    for key, flag in (("host", "-h"), ("port", "-p"), ("user", "-U")):
        if params.get(key):
            command += [flag, str(params[key])]
    command.append(str(params.get("dbname")))
    started = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    with psycopg.connect(dsn, autocommit=True) as conn:
        paid = conn.execute(
            "SELECT count(*) FROM invoices WHERE status = 'paid' AND id LIKE %s",
            (f"in\\_{TAG}%",),
        ).fetchone()[0]  # type: ignore[index]
    done = transactions * clients * batch
    if paid != done:
        raise RuntimeError(f"pgbench credited {paid} invoices, expected {done}: {out.stdout}")
    return {
        "credits_per_s": tps * batch,
        "batches_per_s": tps,
        "batch": batch,
        "clients": clients,
        "credited": paid,
        "batch_latency_ms": float(latency.group(1)) if latency else None,
        "elapsed_s": elapsed,
        "script": str(path),
    }
