"""/v1/invoiceitems: pending charges of a customer, or lines added to a draft invoice."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import fields, validate

from service.api import deps
from service.api.expansion import expand, expandable
from service.api.lists import add_list, add_retrieve, each, fetcher
from service.api.openapi import documented, ref
from service.api.params import load
from service.api.schemas import (
    CreatedListParamsSchema,
    Currency,
    FormBoolean,
    Metadata,
    ObjectId,
    RequestSchema,
    signed_amount,
    text,
)
from service.domain.ids import CUSTOMER, INVOICE
from service.domain.money import MAX_AMOUNT
from service.operations.invoice_items import (
    create_invoice_item,
    delete_invoice_item,
    update_invoice_item,
)
from service.render.invoices import render_deleted, render_invoice_item
from service.store import invoice_items

bp = Blueprint("invoice_items", __name__, url_prefix="/v1/invoiceitems")


class CreateInvoiceItemSchema(RequestSchema):
    customer = ObjectId(CUSTOMER, required=True)
    # Stripe: "Passing in a negative amount will reduce the amount_due on the invoice",
    # and a negative unit_amount likewise ("If you want to apply a credit to the
    # customer's account, pass a negative unit_amount").
    amount = signed_amount()
    unit_amount = signed_amount()
    quantity = fields.Integer(strict=False, validate=validate.Range(1, MAX_AMOUNT))
    currency = Currency(required=True)
    description = text(500)
    metadata = Metadata()
    invoice = ObjectId(INVOICE)


class UpdateInvoiceItemSchema(RequestSchema):
    # What Stripe's update takes that Tally has: not the customer, currency or invoice
    # ("Received unknown parameter: invoice"), which only create sets.
    amount = signed_amount()
    unit_amount = signed_amount()
    quantity = fields.Integer(strict=False, validate=validate.Range(1, MAX_AMOUNT))
    description = text(500)
    metadata = Metadata()


class ListInvoiceItemsSchema(CreatedListParamsSchema):
    customer = text(200, load_default=None)
    invoice = text(200, load_default=None)
    pending = FormBoolean(load_default=None)


_create = CreateInvoiceItemSchema()
_update = UpdateInvoiceItemSchema()
_delete = RequestSchema()
_list = ListInvoiceItemsSchema()


fetch_invoice_item = expandable("ii")(fetcher(invoice_items.get, render_invoice_item))


@bp.post("")
@documented(_create, ref("invoiceitem"))
def create() -> dict[str, Any]:
    params = load(_create, g.params)
    row = create_invoice_item(
        deps.get_conn(), deps.caller(), params, upstream=deps.upstream(), now=int(time.time())
    )
    return expand(render_invoice_item(row), params["expand"], deps.caller().livemode)


add_retrieve(bp, "/<item_id>", fetch_invoice_item, "invoiceitem", ref("invoiceitem"))


@bp.post("/<item_id>")
@documented(_update, ref("invoiceitem"))
def update(item_id: str) -> dict[str, Any]:
    params = load(_update, g.params)
    changes = {k: v for k, v in params.items() if k != "expand"}
    row = update_invoice_item(
        deps.get_conn(), deps.caller(), item_id, changes, now=int(time.time())
    )
    return expand(render_invoice_item(row), params["expand"], deps.caller().livemode)


@bp.delete("/<item_id>")
@documented(_delete, ref("deleted_invoiceitem"))
def delete(item_id: str) -> dict[str, Any]:
    load(_delete, g.params)
    delete_invoice_item(deps.get_conn(), deps.caller(), item_id, now=int(time.time()))
    return render_deleted("invoiceitem", item_id)


add_list(bp, "list_invoice_items", "invoice_items", each(render_invoice_item), _list, "invoiceitem")
