"""The release command: creates the database, applies every migration once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
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


def test_invoices_paid_out_of_band_before_0007_get_their_payment_record(service_urls, tmp_path):
    # given a database at 0006 holding an invoice of 1000 marked paid out of band with
    # 400 credited: amount_paid counted only the credited payment then
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname="tally_migrations_0007")
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tally_migrations_0007")
    for path in sorted(Path(MIGRATIONS_DIR).glob("*.sql")):
        if path.stem < "0007":
            (tmp_path / path.name).write_text(path.read_text())
    try:
        migrate(dsn, tmp_path)
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
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
            assert conn.execute(
                "SELECT amount_paid FROM invoices WHERE id = 'in_new'"
            ).fetchone() == {"amount_paid": 0}
            assert reconciliation.breaches(conn) == []
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS tally_migrations_0007 WITH (FORCE)")


def test_invoice_prefixes_keep_existing_numbers_and_part_customers_that_shared_one(
    service_urls, tmp_path
):
    # given: a database as the previous version left it, with two customers whose ids
    # share the old hash prefix; the first has invoice PREFIX-0001 and a draft
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname="tally_migrations_prefixes")
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tally_migrations_prefixes")
    earlier = tmp_path / "before_0008"
    earlier.mkdir()
    for path in Path(MIGRATIONS_DIR).glob("*.sql"):
        if path.stem < "0008":
            (earlier / path.name).write_text(path.read_text())
    try:
        migrate(dsn, earlier)
        first, second = ids_sharing_a_hash_prefix()
        prefix = hashlib.sha256(first.encode()).hexdigest()[:8].upper()
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(
                "INSERT INTO customers (id, livemode, created) VALUES (%s, false, 0),"
                " (%s, false, 0)",
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
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS tally_migrations_prefixes WITH (FORCE)")
