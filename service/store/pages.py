"""Newest-first cursor pagination shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from service.db import Conn


@dataclass(frozen=True, slots=True)
class Range:
    """Stripe's range filter on an integer column (`created=T`, `created[gte]=T`, ...):
    each bound given is a condition, all must hold."""

    eq: int | None = None
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """A filter matching any of these values (events' `types[]`)."""

    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Like:
    """A filter matching a LIKE pattern whose literal parts are already escaped
    (events' `type=invoice.*`)."""

    pattern: str


def like_literal(text: str) -> str:
    """`text` as a LIKE pattern matching it literally (backslash is LIKE's escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_RANGE_OPERATORS = (("eq", "="), ("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))

# The tables list_page pages through, each with the columns of its rows (those its
# store module returns) and the columns a list may be filtered on. A closed set:
# list_page composes SQL from these names only.
#
# Three are read through the view that derives a column of theirs (migration 0037),
# named as the table.
_VIEWS = {
    "events": "event_rows",
    "invoices": "invoice_rows",
    "payment_records": "payment_record_rows",
}
_LISTS: dict[str, tuple[sql.SQL, frozenset[str]]] = {
    "customers": (
        sql.SQL(
            """id, livemode, email, name, phone, description, metadata, created, balance,
            currency, invoice_prefix, next_invoice_sequence, deleted"""
        ),
        frozenset({"deleted", "created", "email"}),
    ),
    "customer_balance_transactions": (
        sql.SQL(
            """id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created"""
        ),
        frozenset({"customer", "invoice", "created"}),
    ),
    "events": (
        sql.SQL(
            """id, livemode, type, api_version, created, data, request_id, idempotency_key,
            pending_webhooks"""
        ),
        frozenset({"type", "created", "delivery_success"}),
    ),
    "invoice_items": (
        sql.SQL(
            """id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created"""
        ),
        frozenset({"customer", "invoice", "pending", "created"}),
    ),
    "invoice_payments": (
        sql.SQL(
            """id, livemode, invoice, payment_intent, payment_record, currency,
            amount_requested, amount_paid, status, paid_at, canceled_at, created"""
        ),
        frozenset({"invoice", "status", "payment_intent", "payment_record", "created"}),
    ),
    "invoices": (
        sql.SQL(
            """id, livemode, customer, status, currency, number, description, footer,
            metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
            total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
            marked_uncollectible_at, created, ending_balance, starting_balance"""
        ),
        frozenset({"customer", "status", "collection_method", "created", "due_date"}),
    ),
    "payment_intents": (
        sql.SQL(
            """id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created"""
        ),
        frozenset({"customer", "created"}),
    ),
    "payment_records": (
        sql.SQL(
            """id, livemode, amount, currency, customer, outcome, payment_method_type,
            payment_reference, description, initiated_at, guaranteed_at, failed_at,
            canceled_at, metadata, created, amount_refunded"""
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

# Filters that are not columns: what each compares with the value given.
_COMPUTED_FILTERS: dict[tuple[str, str], sql.SQL] = {
    # Stripe: "Filter events by whether all webhooks were successfully delivered. If
    # false, events which are still pending or have failed all delivery attempts to a
    # webhook endpoint will be returned."
    ("events", "delivery_success"): sql.SQL(
        """NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                       WHERE d.event_id = events.id AND d.status <> 'succeeded')"""
    ),
}


def list_page(
    conn: Conn,
    table: str,
    *,
    livemode: bool,
    filters: dict[str, Any],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
    condition: sql.Composable | None = None,
    condition_params: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of `table`'s rows in this mode matching `filters` and `condition`.

    A filter's value is a Range, an AnyOf, a Like, or a value the column equals; None
    filters nothing. `condition` is further SQL the rows must satisfy (a search query),
    its placeholders named `search_*` and bound from `condition_params`.
    Returns the rows, newest first, and whether more lie beyond the page.
    A cursor id that does not exist in this mode matches nothing. `table` and the
    columns of `filters` must be among those _LISTS names.
    """
    if table not in _LISTS:
        raise ValueError(f"list_page does not list {table!r}")
    columns, filterable = _LISTS[table]
    if not filters.keys() <= filterable:
        raise ValueError(f"{table} lists are not filtered on {sorted(filters.keys() - filterable)}")
    where: list[sql.Composable] = [sql.SQL("livemode = %(livemode)s")]
    params: dict[str, Any] = {"livemode": livemode, "limit": limit + 1}
    for column, value in filters.items():
        if value is not None:
            where.extend(_filter(table, column, value, params))
    if condition is not None:
        where.append(sql.SQL("({})").format(condition))
        params.update(condition_params or {})
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
        "SELECT {columns} FROM {rows} AS {table} WHERE {where} ORDER BY {order} LIMIT %(limit)s"
    ).format(
        columns=columns,
        rows=sql.Identifier(_VIEWS.get(table, table)),
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


def _filter(table: str, column: str, value: Any, params: dict[str, Any]) -> list[sql.Composable]:
    """The conditions of one filter, binding its values into `params`."""
    name = _COMPUTED_FILTERS.get((table, column)) or sql.Identifier(column)
    if isinstance(value, Range):
        conditions: list[sql.Composable] = []
        for bound, operator in _RANGE_OPERATORS:
            limit = getattr(value, bound)
            if limit is not None:
                key = f"{column}_{bound}"
                params[key] = limit
                conditions.append(
                    sql.SQL("{} {} {}").format(name, sql.SQL(operator), sql.Placeholder(key))
                )
        return conditions
    if isinstance(value, AnyOf):
        params[column] = list(value.values)
        return [sql.SQL("{} = ANY({})").format(name, sql.Placeholder(column))]
    if isinstance(value, Like):
        params[column] = value.pattern
        return [sql.SQL("{} LIKE {}").format(name, sql.Placeholder(column))]
    params[column] = value
    return [sql.SQL("{} = {}").format(name, sql.Placeholder(column))]
