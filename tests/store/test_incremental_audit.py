"""The ledger check follows the traffic: the sweeper's check looks only at what events
since its last run changed; `tally audit --full` looks at everything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from service.operations.sweep import check_invariants
from service.store import reconciliation
from tests import factories
from tests.tally_command import run_tally

DAY = 86_400


@pytest.fixture
def conn(service_urls: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def corrupted(conn: psycopg.Connection[Any]) -> Iterator[list[str]]:
    """Invoices whose amount_paid a test made wrong; put right afterwards."""
    ids: list[str] = []
    yield ids
    conn.execute("UPDATE invoices SET amount_paid = 0 WHERE id = ANY(%s)", (ids,))


def _corrupt(conn: psycopg.Connection[Any], invoice_id: str, corrupted: list[str]) -> None:
    conn.execute("UPDATE invoices SET amount_paid = 7 WHERE id = %s", (invoice_id,))
    corrupted.append(invoice_id)


def _age_events_of(conn: psycopg.Connection[Any], invoice_id: str, seconds: int) -> None:
    """Make the invoice's events, and its items' (which name it), `seconds` older."""
    conn.execute(
        "UPDATE events SET created = created - %s"
        " WHERE data->'object'->>'id' = %s OR data->'object'->>'invoice' = %s",
        (seconds, invoice_id, invoice_id),
    )


def _breached(found: list[dict[str, Any]], *ids: str) -> set[str]:
    return {b["id"] for b in found if b["check"] == "amount_paid_matches_payments"} & set(ids)


def test_an_incremental_check_sees_what_changed_since_and_a_full_one_sees_all(api, conn, corrupted):
    # given two broken invoices: one whose events are two days old, one changed now
    old, new = factories.open_invoice(api, 2100), factories.open_invoice(api, 2200)
    _age_events_of(conn, old["id"], 2 * DAY)
    _corrupt(conn, old["id"], corrupted)
    _corrupt(conn, new["id"], corrupted)

    # then a check of the last hour finds the new one only, and a full check both
    recent = reconciliation.breaches(conn, since=int(time.time()) - 3600)
    assert _breached(recent, old["id"], new["id"]) == {new["id"]}
    assert _breached(reconciliation.breaches(conn), old["id"], new["id"]) == {old["id"], new["id"]}


def test_an_incremental_check_reaches_what_a_change_belongs_to(api, conn, corrupted):
    # given a customer whose balance was made wrong, and only an invoice of theirs changed
    customer = factories.customer(api)
    invoice = factories.open_invoice(api, 2300, cus=customer)
    conn.execute(
        "UPDATE events SET created = created - 2 * 86400 WHERE data->'object'->>'id' = %s",
        (customer["id"],),
    )
    before = conn.execute(
        "SELECT balance, currency FROM customers WHERE id = %s", (customer["id"],)
    ).fetchone()
    conn.execute(
        "UPDATE customers SET balance = balance + 5, currency = coalesce(currency, 'usd')"
        " WHERE id = %s",
        (customer["id"],),
    )
    try:
        found = reconciliation.breaches(conn, since=int(time.time()) - 3600)
        # then the invoice's change brings its customer into the check
        assert ("customer_balance_is_sum_of_transactions", customer["id"]) in {
            (b["check"], b["id"]) for b in found
        }
        assert invoice["customer"] == customer["id"]
    finally:
        conn.execute(
            "UPDATE customers SET balance = %s, currency = %s WHERE id = %s",
            (before["balance"], before["currency"], customer["id"]),
        )


def test_the_sweepers_check_starts_where_the_last_one_did(api, conn, corrupted):
    # given a check that ran, and then an invoice changed and broke
    check_invariants(conn)
    first = reconciliation.check_watermark(conn)
    assert first is not None and first >= int(time.time()) - 5
    invoice = factories.open_invoice(api, 2400)
    _corrupt(conn, invoice["id"], corrupted)

    # then the next check, from the watermark, finds it, and moves the watermark on
    assert check_invariants(conn) >= 1
    assert reconciliation.check_watermark(conn) >= first


def test_tally_audit_checks_the_last_day_unless_asked_for_everything(
    api, conn, corrupted, service_urls
):
    old = factories.open_invoice(api, 2500)
    _age_events_of(conn, old["id"], 3 * DAY)
    _corrupt(conn, old["id"], corrupted)

    day = run_tally(service_urls["DATABASE_URL"], "audit", "--json")
    week = run_tally(service_urls["DATABASE_URL"], "audit", "--since", "7d", "--json")
    full = run_tally(service_urls["DATABASE_URL"], "audit", "--full", "--json")

    assert old["id"] not in day.stdout
    assert old["id"] in week.stdout and week.returncode == 1
    assert old["id"] in full.stdout and full.returncode == 1
