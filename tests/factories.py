"""Objects made the way a user makes them (through the API), and running things at once."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from service.operations.payments import apply_payment_intent_update
from service.operations.process_inbound import process_inbound_batch
from service.store import events, reconciliation
from tests.pipeline_support import send_event

# The events of a credit that pays an invoice, in the order they are written.
PAYING_EVENTS = [
    "invoice_payment.paid",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
]


def customer(api: Any, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/customers", {"email": "payer@example.com", **params})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def draft_invoice(
    api: Any, amount: int = 1000, currency: str = "usd", cus: dict | None = None
) -> dict[str, Any]:
    """A draft invoice of one item for `amount`."""
    cus = cus or customer(api)
    item = api.post(
        "/v1/invoiceitems", {"customer": cus["id"], "amount": amount, "currency": currency}
    )
    assert item.status_code == 200, item.json
    draft = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "currency": currency, "pending_invoice_items_behavior": "include"},
    )
    assert draft.status_code == 200, draft.json
    return draft.json  # type: ignore[no-any-return]


def finalize(api: Any, invoice_id: str) -> dict[str, Any]:
    finalized = api.post(f"/v1/invoices/{invoice_id}/finalize")
    assert finalized.status_code == 200, finalized.json
    return finalized.json  # type: ignore[no-any-return]


def open_invoice(
    api: Any, amount: int = 1000, currency: str = "usd", cus: dict | None = None
) -> dict[str, Any]:
    """A finalized invoice of one item for `amount`."""
    return finalize(api, draft_invoice(api, amount, currency, cus)["id"])


def payment_intent(api: Any, invoice: dict[str, Any], amount: int, **params: Any) -> dict[str, Any]:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": amount,
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            **params,
        },
    )
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def attached_intents(
    api: Any, invoice: dict[str, Any], amounts: tuple[int, ...]
) -> list[dict[str, Any]]:
    """A PaymentIntent for each of `amounts`, attached to the open `invoice` in order."""
    intents = [payment_intent(api, invoice, amount) for amount in amounts]
    for pi in intents:
        response = api.post(
            f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
        )
        assert response.status_code == 200, response.json
    return intents


def attached_invoice(api: Any, amount: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """An open invoice for `amount` and a PaymentIntent for all of it, attached."""
    invoice = open_invoice(api, amount)
    [pi] = attached_intents(api, invoice, (amount,))
    return invoice, pi


def paid_with_one_to_come(
    api: Any, dsn: str, cus: dict[str, Any], total: int, extra: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An invoice of `total` paid by one PaymentIntent, and a second, of `extra`, attached
    while it was open and not yet succeeded (its success overpays): (invoice, second)."""
    invoice = open_invoice(api, total, cus=cus)
    full, later = attached_intents(api, invoice, (total, extra))
    settle(dsn, full)
    return invoice, later


def stripe_event_object(pi: dict[str, Any], status: str) -> dict[str, Any]:
    """The PaymentIntent as Stripe would send it in an event's data.object."""
    received = pi["amount"] if status == "succeeded" else 0
    return {**pi, "status": status, "amount_received": received}


def settle(dsn: str, pi: dict[str, Any], status: str = "succeeded") -> None:
    """Apply a Stripe PaymentIntent update exactly as the worker does, in its own transaction."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn, conn.transaction():
        written = apply_payment_intent_update(
            conn, stripe_event_object(pi, status), now=int(time.time())
        )
        events.add_all(conn, written)


def balance_url(customer_id: str, txn_id: str = "") -> str:
    return f"/v1/customers/{customer_id}/balance_transactions" + (f"/{txn_id}" if txn_id else "")


def adjust(api: Any, customer_id: str, amount: int, currency: str = "usd", **params: Any) -> Any:
    """An adjustment of the customer's balance (negative credits it)."""
    response = api.post(
        balance_url(customer_id), {"amount": amount, "currency": currency, **params}
    )
    assert response.status_code == 200, response.json
    return response.json


def overpaid_invoice(
    api: Any, dsn: str, cus: dict[str, Any], total: int, extra: int, currency: str = "usd"
) -> dict[str, Any]:
    """An invoice of `total` (nothing applied from the balance) paid `total + extra` by two
    PaymentIntents attached while it was open (each within what remained), both
    succeeded."""
    invoice = open_invoice(api, total, currency, cus=cus)
    assert invoice["amount_due"] == total
    intents = attached_intents(api, invoice, (total, extra))
    for pi in reversed(intents):  # the move to paid is the overpaying credit
        settle(dsn, pi)
    return api.get(f"/v1/invoices/{invoice['id']}").json  # type: ignore[no-any-return]


def balance_ledger(db: Any, customer_id: str) -> list[dict[str, Any]]:
    """The customer's balance transactions, oldest first."""
    return db.execute(  # type: ignore[no-any-return]
        "SELECT id, type, amount, currency, ending_balance, invoice"
        " FROM customer_balance_transactions WHERE customer = %s ORDER BY seq",
        (customer_id,),
    ).fetchall()


def refused(response: Any, param: str) -> None:
    """The request was refused as Stripe refuses a bad parameter: 400,
    invalid_request_error, naming `param`."""
    assert response.status_code == 400, response.json
    assert response.json["error"]["type"] == "invalid_request_error", response.json
    assert response.json["error"]["param"] == param, response.json


def breaches_of(db: Any, *ids: str) -> list[dict[str, Any]]:
    """The ledger check's breaches (store.reconciliation) naming any of `ids`."""
    return [b for b in reconciliation.breaches(db) if b["id"] in ids]


def breaches_while_one_less(db: Any, table: str, column: str, row_id: str) -> list[str]:
    """The checks the row breaches while its `column` is one less than it should be; the
    row is put back afterwards."""
    change = sql.SQL("UPDATE {table} SET {column} = {column} + %s WHERE id = %s").format(
        table=sql.Identifier(table), column=sql.Identifier(column)
    )
    db.execute(change, (-1, row_id))
    try:
        return [b["check"] for b in breaches_of(db, row_id)]
    finally:
        db.execute(change, (1, row_id))


def events_data(db: Any, event_type: str, object_id: str) -> list[dict[str, Any]]:
    """The `data` of each `event_type` event about the object, oldest first."""
    rows = db.execute(
        "SELECT data FROM events WHERE type = %s AND data->'object'->>'id' = %s ORDER BY seq",
        (event_type, object_id),
    ).fetchall()
    return [r["data"] for r in rows]


def invoice_events(db: Any, invoice_id: str) -> list[str]:
    """Types of the events about this invoice or its payments, oldest first."""
    rows = db.execute(
        """
        SELECT type FROM events
        WHERE data->'object'->>'id' = %(id)s OR data->'object'->>'invoice' = %(id)s
        ORDER BY seq
        """,
        {"id": invoice_id},
    ).fetchall()
    return [r["type"] for r in rows]


def together(functions: list[Any]) -> list[Any]:
    """Run the callables at the same instant, each on its own thread; return their results."""
    barrier = threading.Barrier(len(functions))

    def run(fn: Any) -> Any:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(len(functions)) as pool:
        return list(pool.map(run, functions))


def ids_sharing_a_hash_prefix() -> tuple[str, str]:
    """Two customer ids whose old prefix (8 hex digits of their sha256) is the same: a
    birthday search, about 80,000 ids."""
    salt = uuid.uuid4().hex[:8]
    seen: dict[str, str] = {}
    for i in itertools.count():
        customer_id = f"cus_{salt}{i}"
        prefix = hashlib.sha256(customer_id.encode()).hexdigest()[:8]
        if prefix in seen:
            return seen[prefix], customer_id
        seen[prefix] = customer_id
    raise AssertionError("unreachable")


def delivered_to(db: Any, endpoint_id: str, event_id: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM webhook_deliveries WHERE endpoint_id = %s AND event_id = %s",
        (endpoint_id, event_id),
    ).fetchone()
    return row is not None


def receive(server: str, dsn: str, event: dict[str, Any]) -> None:
    """Stripe's signed webhook, stored by the web and processed as a worker does."""
    assert send_event(server, event) == 200
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        for _ in range(20):
            process_inbound_batch(conn, now=int(time.time()), limit=10_000)
            stored = conn.execute(
                "SELECT status FROM inbound_events WHERE id = %s", (event["id"],)
            ).fetchone()
            if stored["status"] != "pending":
                assert stored["status"] == "processed", stored
                return
    raise AssertionError(f"{event['id']} was never settled")


def stripes(amount: int = 2500, **over: Any) -> dict[str, Any]:
    """A PaymentIntent of Stripe's that Tally has never seen."""
    return {
        "id": f"pi_stripe{time.time_ns()}",
        "amount": amount,
        "currency": "usd",
        "created": int(time.time()),
        **over,
    }
