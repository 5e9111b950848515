"""The release command: creates the database, applies every migration once."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from devtools.stripe_events import signed_webhook
from service.app import create_app
from service.domain.events import event_object
from service.migrate import MIGRATIONS_DIR, migrate
from service.operations.context import Caller
from service.operations.invoices import finalize_invoice
from service.store import reconciliation
from tests.conftest import WEBHOOK_SECRET
from tests.database import connected_before, migrated_before
from tests.factories import ids_sharing_a_hash_prefix


def test_migrate_creates_the_database_and_a_second_run_is_a_no_op(service_urls):
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname="tally_migrations_check")
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tally_migrations_check")
    try:
        first = migrate(dsn)
        second = migrate(dsn)
        assert first == sorted(p.stem for p in Path(MIGRATIONS_DIR).glob("*.sql"))
        assert second == []
        with psycopg.connect(dsn) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(versions) == first
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS tally_migrations_check WITH (FORCE)")


def test_invoices_paid_out_of_band_before_0007_get_their_payment_record(service_urls, tmp_path):
    # given a database at 0006 holding an invoice of 1000 marked paid out of band with
    # 400 credited: amount_paid counted only the credited payment then
    with connected_before(service_urls, tmp_path, "0007") as (dsn, conn):
        conn.execute(
            """
            INSERT INTO customers (id, livemode, created) VALUES ('cus_old', false, 1);
            INSERT INTO invoices (id, livemode, customer, status, currency, total,
                amount_paid, paid_out_of_band, finalized_at, paid_at, created)
            VALUES ('in_old', false, 'cus_old', 'paid', 'usd', 1000, 400, true, 2, 3, 1),
                   ('in_new', false, 'cus_old', 'open', 'usd', 500, 0, false, 2, NULL, 1);
            INSERT INTO payment_records (id, livemode, amount, currency, customer, outcome,
                initiated_at, created)
            VALUES ('pr_old', false, 400, 'usd', 'cus_old', 'guaranteed', 2, 2);
            INSERT INTO invoice_payments (id, livemode, invoice, payment_record, currency,
                amount_requested, amount_paid, status, paid_at, created)
            VALUES ('inpay_old', false, 'in_old', 'pr_old', 'usd', 400, 400, 'paid', 2, 2);
            """
        )

        # when 0007 is applied
        assert "0007_out_of_band_payments" in migrate(dsn)

        # then the 600 paid out of band is a paid payment record like /pay makes now
        invoice = conn.execute(
            "SELECT amount_paid, total FROM invoices WHERE id = 'in_old'"
        ).fetchone()
        assert invoice == {"amount_paid": 1000, "total": 1000}
        added = conn.execute(
            """
            SELECT ip.id, ip.amount_paid, ip.status, ip.paid_at, r.id AS record, r.amount,
                   r.outcome, r.customer
            FROM invoice_payments ip JOIN payment_records r ON r.id = ip.payment_record
            WHERE ip.invoice = 'in_old' AND ip.id <> 'inpay_old'
            """
        ).fetchall()
        assert len(added) == 1
        assert added[0]["id"].startswith("inpay_") and added[0]["record"].startswith("pr_")
        assert (added[0]["amount_paid"], added[0]["amount"]) == (600, 600)
        assert (added[0]["status"], added[0]["paid_at"]) == ("paid", 3)
        assert (added[0]["outcome"], added[0]["customer"]) == ("guaranteed", "cus_old")
        assert conn.execute("SELECT amount_paid FROM invoices WHERE id = 'in_new'").fetchone() == {
            "amount_paid": 0
        }
        assert reconciliation.breaches(conn) == []


def test_overpayments_before_0011_are_backfilled_into_the_ledger(service_urls, tmp_path):
    # given a database before 0011 with a customer's two overpaid usd invoices, an
    # overpaid eur invoice, an open one and a draft
    with connected_before(service_urls, tmp_path, "0011") as (dsn, conn):
        conn.execute(
            """
            INSERT INTO customers (id, livemode, created) VALUES ('cus_old', false, 1);
            INSERT INTO invoices (id, livemode, customer, status, currency, total,
                amount_paid, finalized_at, paid_at, created)
            VALUES ('in_a', false, 'cus_old', 'paid', 'usd', 1000, 1300, 2, 3, 1),
                   ('in_b', false, 'cus_old', 'paid', 'usd', 100, 150, 4, 5, 1),
                   ('in_c', false, 'cus_old', 'paid', 'eur', 100, 170, 6, 7, 1),
                   ('in_d', false, 'cus_old', 'open', 'usd', 500, 0, 8, NULL, 1),
                   ('in_e', false, 'cus_old', 'draft', 'usd', 500, 0, NULL, NULL, 1);
            """
        )

        # when 0011 is applied
        assert "0011_customer_balance" in migrate(dsn)

        # then the usd overpayments are the customer's credit, chained in order (the eur
        # one, which 0011 left on its invoice, 0016 credits to the eur balance:
        # tests/test_balance_currencies.py)
        rows = conn.execute(
            "SELECT type, amount, ending_balance, invoice, created"
            " FROM customer_balance_transactions WHERE currency = 'usd' ORDER BY seq"
        ).fetchall()
        assert rows == [
            {"type": "invoice_overpaid", "amount": -300, "ending_balance": -300,
             "invoice": "in_a", "created": 3},
            {"type": "invoice_overpaid", "amount": -50, "ending_balance": -350,
             "invoice": "in_b", "created": 5},
        ]  # fmt: skip
        customer = conn.execute("SELECT balance, currency FROM customers").fetchone()
        assert customer == {"balance": -350, "currency": "usd"}
        # finalized invoices applied no balance; the draft has none frozen yet
        frozen = conn.execute(
            "SELECT id, starting_balance, ending_balance FROM invoices ORDER BY id"
        ).fetchall()
        assert [(r["starting_balance"], r["ending_balance"]) for r in frozen] == [
            (0, 0), (0, 0), (0, 0), (0, 0), (None, None),
        ]  # fmt: skip
        # (the invoices have no payments here: only the balance checks apply)
        checks = {b["check"] for b in reconciliation.breaches(conn)}
        assert checks == {"amount_paid_matches_payments"}


def test_invoice_prefixes_keep_existing_numbers_and_part_customers_that_shared_one(
    service_urls, tmp_path
):
    # given: a database as the previous version left it, with two customers whose ids
    # share the old hash prefix; the first has invoice PREFIX-0001 and a draft
    with connected_before(service_urls, tmp_path, "0008") as (dsn, conn):
        first, second = ids_sharing_a_hash_prefix()
        prefix = hashlib.sha256(first.encode()).hexdigest()[:8].upper()
        conn.execute(
            "INSERT INTO customers (id, livemode, created) VALUES (%s, false, 0), (%s, false, 0)",
            (first, second),
        )
        conn.execute(
            "INSERT INTO invoices (id, livemode, customer, status, currency, number, total,"
            " created) VALUES ('in_numbered', false, %s, 'open', 'usd', %s, 100, 0),"
            " ('in_draft1', false, %s, 'draft', 'usd', NULL, 100, 0),"
            " ('in_draft2', false, %s, 'draft', 'usd', NULL, 100, 0)",
            (first, f"{prefix}-0001", first, second),
        )
        # when: the rest is applied, and each customer's draft is finalized
        migrate(dsn)
        caller = Caller(livemode=False)
        numbers = [
            finalize_invoice(conn, caller, invoice, now=0).number
            for invoice in ("in_draft1", "in_draft2")
        ]
    # then: the first continues its prefix; the second got one of its own
    assert numbers == [f"{prefix}-0002", f"{prefix}X2-0001"]


def _signed_created_event() -> tuple[bytes, dict[str, str]]:
    now = int(time.time())
    event = event_object(
        id=f"evt_{uuid.uuid4().hex}", type="payment_intent.created", created=now,
        data={"object": {"id": f"pi_{uuid.uuid4().hex}", "object": "payment_intent"}},
        livemode=False,
    )  # fmt: skip
    return signed_webhook(event, WEBHOOK_SECRET, timestamp=now)


def test_a_migration_waiting_for_a_lock_backs_off_and_intake_keeps_answering(
    service_urls, settings, tmp_path, caplog
):
    """An ALTER queued behind a long read would hold up every intake INSERT for as long
    as the read lasts; with a lock timeout it gives way, and retries until it applies."""
    name = "tally_migrations_lock_wait"
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname=name)
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)
    for path in Path(MIGRATIONS_DIR).glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    migrate(dsn, tmp_path)
    app = create_app(dataclasses.replace(settings, database_url=dsn, pool_max_size=2))
    try:
        (tmp_path / "9999_needs_a_lock.sql").write_text(
            "ALTER TABLE inbound_events ADD COLUMN lock_probe integer;"
        )
        client = app.test_client()
        with psycopg.connect(dsn) as reader:
            reader.execute("SELECT count(*) FROM inbound_events")  # holds its lock until commit
            caplog.set_level(logging.WARNING, logger="service.migrate")
            with ThreadPoolExecutor(2) as pool:
                migration = pool.submit(migrate, dsn, tmp_path, lock_timeout=0.2, first_backoff=0.2)
                for _ in range(100):
                    if "stayed locked" in caplog.text:
                        break
                    time.sleep(0.1)
                assert "stayed locked" in caplog.text, "the migration never gave way"
                # While the read still holds its lock, intake stores and answers.
                intake = pool.submit(
                    lambda: [client.post("/webhooks/stripe", data=body, headers=headers)
                             for body, headers in (_signed_created_event() for _ in range(5))]
                )  # fmt: skip
                responses = intake.result(timeout=20)
                assert [r.status_code for r in responses] == [200] * 5
                assert not migration.done()
                stored = reader.execute("SELECT count(*) FROM inbound_events").fetchone()
                assert stored == (5,)
                reader.commit()
                assert migration.result(timeout=30) == ["9999_needs_a_lock"]
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT 1 FROM information_schema.columns"
                " WHERE table_name = 'inbound_events' AND column_name = 'lock_probe'"
            ).fetchone()
        assert row == (1,)
    finally:
        app.extensions["pool"].close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(drop)


def test_a_migration_marked_no_transaction_can_build_an_index_concurrently(service_urls, tmp_path):
    with migrated_before(service_urls, tmp_path, "9999") as dsn:
        (tmp_path / "9999_index_concurrently.sql").write_text(
            "-- tally:no-transaction\n"
            "-- Re-runnable: a failed CREATE INDEX CONCURRENTLY leaves an invalid index.\n"
            "DROP INDEX CONCURRENTLY IF EXISTS inbound_events_probe_idx;\n"
            "CREATE INDEX CONCURRENTLY inbound_events_probe_idx\n"
            "    ON inbound_events (received_at);\n"
        )
        assert migrate(dsn, tmp_path) == ["9999_index_concurrently"]
        with psycopg.connect(dsn) as conn:
            valid = conn.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = 'inbound_events_probe_idx'"
            ).fetchone()
            recorded = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = '9999_index_concurrently'"
            ).fetchone()
        assert valid == (True,)
        assert recorded == (1,)
