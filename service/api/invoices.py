"""/v1/invoices: drafts, their updates, Stripe's status moves, and their lines."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import fields, validate

from service.api import deps
from service.api.expansion import expand, expandable
from service.api.lists import SEARCH, add_list, add_retrieve, search_response
from service.api.openapi import documented, page_of, ref, search_of
from service.api.params import load
from service.api.schemas import (
    MAX_STRING,
    CreatedListParamsSchema,
    Currency,
    FormBoolean,
    ListParamsSchema,
    Metadata,
    ObjectId,
    RequestSchema,
    TimestampRange,
    text,
)
from service.domain.ids import CUSTOMER
from service.domain.invoices import STATUSES
from service.domain.ledger import Invoice
from service.errors import InvalidParameter, NotFound
from service.operations import invoices as operations
from service.operations.attach import pay_out_of_band
from service.operations.invoicing import invoice_object, invoice_objects
from service.render.invoices import (
    lines_url,
    render_deleted,
    render_line_item,
)
from service.render.lists import list_object
from service.store import invoice_items, invoices

bp = Blueprint("invoices", __name__, url_prefix="/v1/invoices")

COLLECTION_METHODS = ("charge_automatically", "send_invoice")


def _timestamp(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=False, validate=validate.Range(0, 2**40), **kwargs)


class CreateInvoiceSchema(RequestSchema):
    customer = ObjectId(CUSTOMER, required=True)
    currency = Currency()
    pending_invoice_items_behavior = fields.String(validate=validate.OneOf(("exclude", "include")))
    auto_advance = FormBoolean()
    collection_method = fields.String(validate=validate.OneOf(COLLECTION_METHODS))
    description = text(1500)
    footer = text(MAX_STRING)
    due_date = _timestamp()
    days_until_due = fields.Integer(strict=False, validate=validate.Range(0, 1825))
    metadata = Metadata()


class UpdateInvoiceSchema(RequestSchema):
    description = text(1500, allow_none=True)
    footer = text(MAX_STRING, allow_none=True)
    metadata = Metadata()
    auto_advance = FormBoolean()
    collection_method = fields.String(validate=validate.OneOf(COLLECTION_METHODS))
    due_date = _timestamp(allow_none=True)


class FinalizeSchema(RequestSchema):
    auto_advance = FormBoolean()


class PaySchema(RequestSchema):
    paid_out_of_band = FormBoolean()


class ListInvoicesSchema(CreatedListParamsSchema):
    customer = text(200, load_default=None)
    status = fields.String(validate=validate.OneOf(STATUSES), load_default=None)
    collection_method = fields.String(
        validate=validate.OneOf(COLLECTION_METHODS), load_default=None
    )
    due_date = TimestampRange()


_create = CreateInvoiceSchema()
_update = UpdateInvoiceSchema()
_finalize = FinalizeSchema()
_pay = PaySchema()
_plain = RequestSchema()
_list = ListInvoicesSchema()
_lines = ListParamsSchema()


@expandable("in")
def fetch_invoice(invoice_id: str, livemode: bool) -> dict[str, Any] | None:
    conn = deps.get_conn()
    row = invoices.get(conn, invoice_id, livemode)
    return invoice_object(conn, row) if row else None


def _respond(row: Invoice | dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return expand(invoice_object(deps.get_conn(), row), params["expand"], deps.caller().livemode)


def _blank_to_none(params: dict[str, Any]) -> dict[str, Any]:
    """Stripe clears a field sent as an empty string."""
    return {k: None if v == "" and k != "metadata" else v for k, v in params.items()}


def _render_page(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return invoice_objects(deps.get_conn(), rows)


@bp.post("")
@documented(_create, ref("invoice"))
def create() -> dict[str, Any]:
    params = load(_create, g.params)
    row = operations.create_invoice(
        deps.get_conn(), deps.caller(), params, upstream=deps.upstream(), now=int(time.time())
    )
    return _respond(row, params)


add_retrieve(bp, "/<invoice_id>", fetch_invoice, "invoice", ref("invoice"))


@bp.post("/<invoice_id>")
@documented(_update, ref("invoice"))
def update(invoice_id: str) -> dict[str, Any]:
    params = load(_update, _blank_to_none(g.params))
    changes = {k: v for k, v in params.items() if k != "expand"}
    row = operations.update_invoice(
        deps.get_conn(), deps.caller(), invoice_id, changes, now=int(time.time())
    )
    return _respond(row, params)


@bp.delete("/<invoice_id>")
@documented(_plain, ref("deleted_invoice"))
def delete(invoice_id: str) -> dict[str, Any]:
    load(_plain, g.params)
    operations.delete_invoice(deps.get_conn(), deps.caller(), invoice_id, now=int(time.time()))
    return render_deleted("invoice", invoice_id)


add_list(bp, "list_invoices", "invoices", _render_page, _list, "invoice")


@bp.get("/search")
@documented(SEARCH, search_of("invoice"))
def search_invoices() -> dict[str, Any]:
    return search_response("/v1/invoices/search", "invoices", _render_page)


@bp.post("/<invoice_id>/finalize")
@documented(_finalize, ref("invoice"))
def finalize(invoice_id: str) -> dict[str, Any]:
    params = load(_finalize, g.params)
    row = operations.finalize_invoice(
        deps.get_conn(),
        deps.caller(),
        invoice_id,
        auto_advance=params.get("auto_advance"),
        now=int(time.time()),
    )
    return _respond(row, params)


@bp.post("/<invoice_id>/void")
@documented(_plain, ref("invoice"))
def void(invoice_id: str) -> dict[str, Any]:
    params = load(_plain, g.params)
    row = operations.void_invoice(deps.get_conn(), deps.caller(), invoice_id, now=int(time.time()))
    return _respond(row, params)


@bp.post("/<invoice_id>/mark_uncollectible")
@documented(_plain, ref("invoice"))
def mark_uncollectible(invoice_id: str) -> dict[str, Any]:
    params = load(_plain, g.params)
    row = operations.mark_uncollectible(
        deps.get_conn(), deps.caller(), invoice_id, now=int(time.time())
    )
    return _respond(row, params)


@bp.post("/<invoice_id>/pay")
@documented(_pay, ref("invoice"))
def pay(invoice_id: str) -> dict[str, Any]:
    params = load(_pay, g.params)
    if not params.get("paid_out_of_band"):
        # Tally moves no money: an invoice is paid through attach_payment or out of band.
        raise InvalidParameter(
            "Tally is not a payment processor: pay an invoice by attaching a payment "
            "(POST /v1/invoices/:id/attach_payment), or pass paid_out_of_band=true.",
            param="paid_out_of_band",
        )
    row = pay_out_of_band(deps.get_conn(), deps.caller(), invoice_id, now=int(time.time()))
    return _respond(row, params)


@bp.get("/<invoice_id>/lines")
@documented(_lines, page_of("line_item"))
def lines(invoice_id: str) -> dict[str, Any]:
    args = load(_lines, g.params)
    conn = deps.get_conn()
    livemode = deps.caller().livemode
    if invoices.get(conn, invoice_id, livemode) is None:
        raise NotFound(f"No such invoice: '{invoice_id}'", param="id")
    rows, has_more = invoice_items.lines_page(
        conn,
        invoice_id,
        limit=args["limit"],
        starting_after=args["starting_after"],
        ending_before=args["ending_before"],
    )
    page = list_object(
        [render_line_item(r) for r in rows], has_more=has_more, url=lines_url(invoice_id)
    )
    return expand(page, args["expand"], livemode)
