"""Newest-first cursor pagination shared by every list endpoint."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# The tables list_page pages through, each with the columns of its rows (those its
# store module returns) and the columns a list may be filtered on. A closed set:
# list_page composes SQL from these names only.
_LISTS: dict[str, tuple[sql.SQL, frozenset[str]]] = {
    "customers": (
        sql.SQL(
            """id, livemode, email, name, phone, description, metadata, created, balance,
            currency, invoice_prefix, next_invoice_sequence, deleted"""
        ),
        frozenset({"deleted"}),
    ),
    "customer_balance_transactions": (
        sql.SQL(
            """id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created"""
        ),
        frozenset({"customer", "invoice"}),
    ),
    "events": (
        sql.SQL(
            """id, livemode, type, api_version, created, data, request_id, idempotency_key,
            (SELECT count(*) FROM webhook_deliveries d
             WHERE d.event_id = events.id AND d.status = 'pending') AS pending_webhooks"""
        ),
        frozenset({"type"}),
    ),
    "invoice_items": (
        sql.SQL(
            """id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created"""
        ),
        frozenset({"customer", "invoice", "pending"}),
    ),
    "invoice_payments": (
        sql.SQL(
            """id, livemode, invoice, payment_intent, payment_record, currency,
            amount_requested, amount_paid, status, paid_at, canceled_at, created"""
        ),
        frozenset({"invoice", "status", "payment_intent", "payment_record"}),
    ),
    "invoices": (
        sql.SQL(
            """id, livemode, customer, status, currency, number, description, footer,
            metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
            total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
            marked_uncollectible_at, created, ending_balance,
            coalesce(starting_balance,
                     (SELECT b.balance FROM customer_balances b
                      WHERE b.customer = invoices.customer AND b.currency = invoices.currency),
                     0) AS starting_balance"""
        ),
        frozenset({"customer", "status"}),
    ),
    "payment_intents": (
        sql.SQL(
            """id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created"""
        ),
        frozenset({"customer"}),
    ),
    "payment_records": (
        sql.SQL(
            """id, livemode, amount, currency, customer, outcome, payment_method_type,
            payment_reference, description, initiated_at, guaranteed_at, failed_at,
            canceled_at, metadata, created,
            (SELECT coalesce(sum(f.amount), 0)::bigint FROM payment_record_refunds f
             WHERE f.payment_record = payment_records.id) AS amount_refunded"""
        ),
        frozenset(),
    ),
    "webhook_endpoints": (
        sql.SQL(
            """id, livemode, url, enabled_events, status, description, api_version,
            metadata, created"""
        ),
        frozenset({"deleted"}),
    ),
}


def list_page(
    conn: psycopg.Connection[Any],
    table: str,
    *,
    livemode: bool,
    filters: dict[str, Any],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of `table`'s rows in this mode matching `filters` (column = value).

    Returns the rows, newest first, and whether more lie beyond the page.
    A cursor id that does not exist in this mode matches nothing. `table` and the
    columns of `filters` must be among those _LISTS names.
    """
    if table not in _LISTS:
        raise ValueError(f"list_page does not list {table!r}")
    columns, filterable = _LISTS[table]
    if not filters.keys() <= filterable:
        raise ValueError(f"{table} lists are not filtered on {sorted(filters.keys() - filterable)}")
    where = [sql.SQL("livemode = %(livemode)s")]
    params: dict[str, Any] = {"livemode": livemode, "limit": limit + 1}
    for column, value in filters.items():
        if value is not None:
            where.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = value
    cursor_seq = sql.SQL(
        "(SELECT seq FROM {} WHERE id = %(cursor)s AND livemode = %(livemode)s)"
    ).format(sql.Identifier(table))
    order = sql.SQL("seq DESC")
    if starting_after is not None:
        where.append(sql.SQL("seq < ") + cursor_seq)
        params["cursor"] = starting_after
    elif ending_before is not None:
        where.append(sql.SQL("seq > ") + cursor_seq)
        params["cursor"] = ending_before
        order = sql.SQL("seq ASC")
    query = sql.SQL(
        "SELECT {columns} FROM {table} WHERE {where} ORDER BY {order} LIMIT %(limit)s"
    ).format(
        columns=columns,
        table=sql.Identifier(table),
        where=sql.SQL(" AND ").join(where),
        order=order,
    )
    rows = conn.execute(query, params).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if ending_before is not None:
        rows.reverse()
    return rows, has_more
