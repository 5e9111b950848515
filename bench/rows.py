"""Rows in bulk for the benchmarks: one customer, invoice and PaymentIntent made through
the API in-process, then cloned by the thousand in SQL, and the successes Stripe would
send for the clones stored as the intake stores them."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from bench.common import BENCH_KEY, BENCH_SECRET
from devtools.stripe_events import stripe_event

# Every table a template has rows in, in the order they are cloned.
EVERYTHING = ("customers", "invoices", "invoice_items", "payment_intents", "invoice_payments")


def templates(dsn: str, redis_url: str, **kinds: dict[str, bool]) -> dict[str, dict[str, str]]:
    """A template per keyword, made by `make_template(app, BENCH_KEY, **options)` through
    Tally's app in this process, e.g. templates(dsn, url, attached={"attach": True})."""
    from service.app import create_app
    from service.config import Settings
    from service.domain.signatures import WebhookSecrets

    app = create_app(
        Settings(
            database_url=dsn,
            redis_url=redis_url,
            api_keys=(BENCH_KEY,),
            webhook_secrets=WebhookSecrets(test=(BENCH_SECRET,)),
        )
    )
    try:
        return {name: make_template(app, BENCH_KEY, **options) for name, options in kinds.items()}
    finally:
        app.extensions["pool"].close()


def success_body(template: dict[str, str]) -> str:
    """payment_intent.succeeded for the template's PaymentIntent, as JSON."""
    pi = {"id": template["payment_intent"], "amount": 1299, "currency": "usd",
          "customer": template["customer"]}  # fmt: skip
    return json.dumps(stripe_event(pi, "payment_intent.succeeded"))


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
