"""The release command: creates the database, applies every migration once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from service.migrate import MIGRATIONS_DIR, migrate
from service.operations.context import Caller
from service.operations.invoices import finalize_invoice
from service.store import reconciliation
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


@contextmanager
def migrated_before(service_urls, tmp_path, version: str) -> Iterator[str]:
    """A scratch database with the migrations before `version` applied; yields its DSN,
    and drops it afterwards."""
    name = f"tally_migrations_{version}"
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname=name)
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)
    for path in sorted(Path(MIGRATIONS_DIR).glob("*.sql")):
        if path.stem < version:
            (tmp_path / path.name).write_text(path.read_text())
    try:
        migrate(dsn, tmp_path)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(drop)


def test_invoices_paid_out_of_band_before_0007_get_their_payment_record(service_urls, tmp_path):
    # given a database at 0006 holding an invoice of 1000 marked paid out of band with
    # 400 credited: amount_paid counted only the credited payment then
    with (
        migrated_before(service_urls, tmp_path, "0007") as dsn,
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
    ):
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
    with (
        migrated_before(service_urls, tmp_path, "0011") as dsn,
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
    ):
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
    with (
        migrated_before(service_urls, tmp_path, "0008") as dsn,
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
    ):
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
            finalize_invoice(conn, caller, invoice, now=0)["number"]
            for invoice in ("in_draft1", "in_draft2")
        ]
    # then: the first continues its prefix; the second got one of its own
    assert numbers == [f"{prefix}-0002", f"{prefix}X2-0001"]
