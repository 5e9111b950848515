"""The verdict of a run: what the ledger, the events and the receiver show, through
the API and PostgreSQL, against what the run knows it sent and had acknowledged."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.chaos.plans import InvoicePlan, Payment
from bench.chaos.traffic import TABLES, Client, Unanswered
from devtools.receiver import Receiver
from service.store.reconciliation import breaches

SUBSCRIBED = (
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.overpaid",
    "invoice_payment.paid",
    "customer.updated",
)


def expected_credits(plans: list[InvoicePlan]) -> list[Payment]:
    return [
        p for plan in plans for p in plan.payments if p.attached and p.succeeds and p.success_acked
    ]


def backlog(conn: psycopg.Connection[Any], plans: list[InvoicePlan], receiver: Receiver) -> str:
    """What is left to do, or "" when the stack has settled: inbound events pending,
    events unpublished, deliveries pending, expected credits, events not received."""
    row = conn.execute(
        """
        SELECT (SELECT count(*) FROM inbound_events WHERE status = 'pending'),
               (SELECT count(*) FROM event_outbox),
               (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),
               (SELECT extract(epoch FROM max(next_attempt_at) - now())::int
                FROM webhook_deliveries WHERE status = 'pending')
        """
    ).fetchone()
    assert row is not None
    inbound, unpublished, deliveries, due_in = row
    expected = [p.pi["id"] for p in expected_credits(plans) if p.pi]
    paid = conn.execute(
        "SELECT count(*) FROM invoice_payments WHERE status = 'paid' AND payment_intent = ANY(%s)",
        (expected,),
    ).fetchone()
    uncredited = len(expected) - (paid[0] if paid else 0)
    ids = conn.execute("SELECT id FROM events WHERE type = ANY(%s)", (list(SUBSCRIBED),))
    missing = len({r[0] for r in ids} - set(receiver.event_ids()))
    parts = [
        f"{inbound} inbound pending" if inbound else "",
        f"{unpublished} events unpublished" if unpublished else "",
        f"{deliveries} deliveries pending (last due in {due_in} s)" if deliveries else "",
        f"{uncredited} credits not made" if uncredited > 0 else "",
        f"{missing} subscribed events not received" if missing else "",
    ]
    return ", ".join(p for p in parts if p)


def wait_settled(
    dsn: str, plans: list[InvoicePlan], receiver: Receiver, deadline: float
) -> tuple[float | None, str]:
    """The monotonic time the stack settled (None at the deadline), and what was left."""
    left, said = "not checked", time.monotonic()
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
                while time.monotonic() < deadline:
                    left = backlog(conn, plans, receiver)
                    if not left:
                        return time.monotonic(), ""
                    if time.monotonic() - said > 10:
                        print(f"  settling: {left}", flush=True)
                        said = time.monotonic()
                    time.sleep(0.5)
        except psycopg.Error as exc:
            left = f"PostgreSQL unreachable: {exc}"
            time.sleep(0.5)
    return None, left


@dataclass
class Verdict:
    checks: list[tuple[str, list[str]]] = field(default_factory=list)  # (claim, problems)
    credited: int = 0
    expected: int = 0
    lost: int = 0
    doubled: int = 0
    records_credited: int = 0
    records_expected: int = 0

    def check(self, claim: str, problems: list[str]) -> None:
        self.checks.append((claim, problems))

    @property
    def ok(self) -> bool:
        return not any(problems for _, problems in self.checks)


def judge(dsn: str, client: Client, plans: list[InvoicePlan], receiver: Receiver) -> Verdict:
    v = Verdict()
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        _credits(v, conn, plans)
        _records(v, conn, plans)
        _invoices(v, client, plans)
        v.check("every ledger invariant holds (reconciliation.breaches)",
                [f"{b['check']} {b['id']}: {b['detail']}" for b in breaches(conn)])  # fmt: skip
        _events(v, conn, plans)
        _deliveries(v, conn, receiver)
        _idempotency(v, conn, client)
        rows = conn.execute("SELECT status, count(*) AS n FROM inbound_events GROUP BY status")
        left = {r["status"]: r["n"] for r in rows if r["status"] in ("pending", "failed")}
        v.check("no inbound event left pending or failed",
                [f"{n} {status}" for status, n in left.items()])  # fmt: skip
    v.check("every request answered after the faults (2xx, or a 4xx that is expected)",
            [f"unanswered {c.path} key {c.key}" for c in client.unanswered]
            + client.stats.refused)  # fmt: skip
    return v


def _credits(v: Verdict, conn: psycopg.Connection[Any], plans: list[InvoicePlan]) -> None:
    payments = [p for plan in plans for p in plan.payments if p.pi is not None]
    rows = conn.execute(
        "SELECT ip.payment_intent, ip.status, ip.amount_paid, pi.status AS pi_status"
        " FROM payment_intents pi LEFT JOIN invoice_payments ip ON ip.payment_intent = pi.id"
        " WHERE pi.id = ANY(%s)",
        ([p.pi["id"] for p in payments],),  # type: ignore[index]
    ).fetchall()
    by_pi: dict[str, list[dict[str, Any]]] = {}
    status: dict[str, str] = {}
    for row in rows:
        status[row["payment_intent"] or ""] = row["pi_status"]
        if row["payment_intent"]:
            by_pi.setdefault(row["payment_intent"], []).append(row)
    credit, attach, regress = [], [], []
    for p in payments:
        pi_id = p.pi["id"]  # type: ignore[index]
        found = by_pi.get(pi_id, [])
        paid = [r for r in found if r["status"] == "paid"]
        if p.attached is True and not found:
            attach.append(f"{pi_id}: attach answered 200 but no invoice payment exists")
        if p.attached is False and found:
            attach.append(f"{pi_id}: attach was refused but an invoice payment exists")
        if len(found) > 1:
            attach.append(f"{pi_id}: attached {len(found)} times")
        if p.attached and p.succeeds and p.success_acked:
            v.expected += 1
            if not paid:
                v.lost += 1
                credit.append(f"{pi_id}: succeeded, acknowledged, not credited")
            elif len(paid) > 1 or paid[0]["amount_paid"] != p.amount:
                v.doubled += 1
                credit.append(f"{pi_id}: credited {[r['amount_paid'] for r in paid]}")
            else:
                v.credited += 1
        elif paid:
            v.doubled += 1
            credit.append(f"{pi_id}: credited though it did not succeed ({p.fate})")
        if p.succeeds and p.success_acked and found and status.get(pi_id) != "succeeded":
            regress.append(f"{pi_id}: status {status.get(pi_id)} after an acknowledged success")
    v.check("every succeeded PaymentIntent credited exactly once, nothing else", credit)
    v.check("each attach happened once, exactly when it was answered 200", attach)
    v.check("no PaymentIntent moved backwards (late processing ignored)", regress)


def _records(v: Verdict, conn: psycopg.Connection[Any], plans: list[InvoicePlan]) -> None:
    """Each payment record's invoice payment: paid with the record's amount once it is
    attached and guaranteed (at once, or by a later report), never before, never twice
    (invoice_payments has one row per record at most: a UNIQUE constraint)."""
    with_records = [plan for plan in plans if plan.record_id]
    rows = conn.execute(
        "SELECT payment_record, status, amount_paid FROM invoice_payments"
        " WHERE payment_record = ANY(%s)",
        ([plan.record_id for plan in with_records],),
    ).fetchall()
    by_record = {row["payment_record"]: row for row in rows}
    problems = []
    for plan in with_records:
        row = by_record.get(plan.record_id)
        name = f"{plan.record_id} ({plan.kind})"
        if plan.record_attached is True and row is None:
            problems.append(f"{name}: attach answered 200 but no invoice payment exists")
        if plan.record_attached is False and row is not None:
            problems.append(f"{name}: attach was refused but an invoice payment exists")
        paid = row is not None and row["status"] == "paid"
        if plan.record_credited():
            v.records_expected += 1
            if not paid:
                v.lost += 1
                problems.append(f"{name}: attached and guaranteed, not credited")
            elif row is not None and row["amount_paid"] != plan.record:
                v.doubled += 1
                problems.append(f"{name}: credited {row['amount_paid']} of {plan.record}")
            else:
                v.records_credited += 1
        elif paid:
            v.doubled += 1
            problems.append(f"{name}: credited though never reported guaranteed")
    v.check("every payment record credited exactly once, and only once guaranteed", problems)


def _invoices(v: Verdict, client: Client, plans: list[InvoicePlan]) -> None:
    """amount_paid and status of every invoice, read through the API."""
    seen: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        params = {"limit": 100, **({"starting_after": after} if after else {})}
        try:
            page = client.get("/v1/invoices", params)
        except Unanswered as exc:
            v.check("invoices readable through the API", [str(exc)])
            return
        seen.update((i["id"], i) for i in page["data"])
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    problems = []
    for plan in plans:
        if plan.invoice_id is None or plan.invoice_id not in seen:
            continue
        invoice, want = seen[plan.invoice_id], plan.expected_paid()
        if invoice["amount_paid"] > want:
            v.doubled += 1
        elif invoice["amount_paid"] < want:
            v.lost += 1
        if invoice["amount_paid"] != want:
            problems.append(f"{plan.invoice_id} ({plan.kind}): amount_paid "
                            f"{invoice['amount_paid']}, the run paid {want}")  # fmt: skip
        if plan.finalized and invoice["status"] != ("paid" if want >= plan.total else "open"):
            problems.append(f"{plan.invoice_id}: status {invoice['status']} with {want} paid")
    v.check("every invoice's amount_paid (API) is what the run paid, no more, no less", problems)


def _events(v: Verdict, conn: psycopg.Connection[Any], plans: list[InvoicePlan]) -> None:
    rows = conn.execute(
        "SELECT data->'object'->>'id' AS invoice, type, count(*) AS n FROM events"
        " WHERE type IN ('invoice.paid', 'invoice.overpaid') GROUP BY 1, 2"
    ).fetchall()
    counts = {(r["invoice"], r["type"]): r["n"] for r in rows}
    problems = [f"{inv}: {t} x{n}" for (inv, t), n in counts.items() if n > 1]
    for plan in plans:
        paid = plan.invoice_id and plan.expected_paid() >= plan.total > 0
        if paid and counts.get((plan.invoice_id, "invoice.paid"), 0) != 1:
            problems.append(f"{plan.invoice_id}: paid, but no invoice.paid event")
    v.check("invoice.paid exactly once per paid invoice, invoice.overpaid at most once", problems)


def _deliveries(v: Verdict, conn: psycopg.Connection[Any], receiver: Receiver) -> None:
    rows = conn.execute("SELECT id FROM events WHERE type = ANY(%s)", (list(SUBSCRIBED),))
    subscribed = {r["id"] for r in rows}
    with receiver.lock:
        ok = [r["event"] for r in receiver.received if r["status"] == 200]
        rejected = list(receiver.rejected)
    types = {event["id"]: event["type"] for event in ok}
    received = set(types)
    missing = sorted(subscribed - received)
    problems = (
        [f"{len(missing)} subscribed events never delivered, e.g. {missing[:3]}"] if missing else []
    )
    problems += [f"{e}: {t} is not subscribed" for e, t in types.items() if t not in SUBSCRIBED][:5]
    problems += [f"signature refused by the stripe SDK: {r}" for r in rejected[:5]]
    v.check("every subscribed event reached the receiver, verified by stripe.Webhook", problems)


def _idempotency(v: Verdict, conn: psycopg.Connection[Any], client: Client) -> None:
    counts: Counter[str] = Counter()
    for table in TABLES.values():
        rows = conn.execute(  # table names are this module's constants
            f"SELECT metadata->>'run_key' AS key, count(*) AS n FROM {table}"
            " WHERE metadata ? 'run_key' GROUP BY 1"
        )
        counts.update({r["key"]: r["n"] for r in rows})
    problems = []
    for key, path in client.paths.items():
        if path not in TABLES:
            continue
        n, status = counts.get(key, 0), client.keys.get(key)
        if n > 1:
            v.doubled += 1
            problems.append(f"{path} key {key}: {n} objects")
        elif n == 0 and status == 200:
            v.lost += 1
            problems.append(f"{path} key {key}: answered 200, no object")
        elif n == 1 and status is not None and status != 200:
            problems.append(f"{path} key {key}: answered {status}, yet created")
    v.check("no idempotent create ran twice (objects per Idempotency-Key)", problems)
