"""The invoice locked, and the invoice as Stripe shows it, for the use cases and the API.

Render queries nothing: the invoice object embeds its newest lines, which are read
here and passed to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.db import Conn
from service.domain.ledger import Invoice, as_dict
from service.errors import NotFound
from service.operations.context import Caller
from service.render.invoices import EMBEDDED_LINES, render_invoice, render_invoices
from service.store import invoice_items, invoices


def locked_invoice(conn: Conn, caller: Caller, invoice_id: str) -> Invoice:
    """The invoice of the URL path, locked until the transaction ends (first: the lock
    order)."""
    invoice = invoices.get_for_update(conn, invoice_id, caller.livemode)
    if invoice is None:
        raise NotFound(f"No such invoice: '{invoice_id}'", param="id")
    return invoice


def invoice_object(conn: Conn, invoice: Invoice | Mapping[str, Any]) -> dict[str, Any]:
    """The invoice in Stripe's shape, with its newest lines (one query for them)."""
    row = as_dict(invoice) if isinstance(invoice, Invoice) else dict(invoice)
    return render_invoice(row, invoice_items.lines(conn, row["id"], EMBEDDED_LINES + 1))


def invoice_objects(conn: Conn, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Many invoices in Stripe's shape, with one query for all their lines (a list page)."""
    lines = invoice_items.lines_of(conn, [row["id"] for row in rows], EMBEDDED_LINES + 1)
    return render_invoices(rows, lines)
