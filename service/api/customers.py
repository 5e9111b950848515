"""/v1/customers, and each customer's balance transactions."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import fields, pre_load, validate

from service.api import deps
from service.api.expansion import expand, expandable, includable
from service.api.lists import (
    RETRIEVE,
    SEARCH,
    add_list,
    add_retrieve,
    each,
    list_response,
    retrieve_response,
    search_response,
)
from service.api.openapi import documented, page_of, ref, search_of
from service.api.params import load
from service.api.schemas import (
    CreatedListParamsSchema,
    Currency,
    Metadata,
    RequestSchema,
    signed_amount,
    text,
)
from service.errors import InvalidRequest, NotFound
from service.operations.balances import create_balance_transaction, update_balance_transaction
from service.operations.customers import create_customer, delete_customer, update_customer
from service.render.customers import (
    render_balance_transaction,
    render_customer,
    render_deleted_customer,
)
from service.store import balance_transactions, customers, invoices

bp = Blueprint("customers", __name__, url_prefix="/v1/customers")


# Stripe: "The prefix for the customer used to generate unique invoice numbers. Must
# be 3-12 uppercase letters or numbers."
def invoice_prefix() -> fields.String:
    return fields.String(
        validate=validate.Regexp(
            r"^[A-Z0-9]{3,12}$", error="must be 3 to 12 uppercase letters or numbers."
        )
    )


class CreateCustomerSchema(RequestSchema):
    email = fields.Email(validate=validate.Length(max=512))
    name = text(256)
    phone = text(20)
    description = text(350)
    metadata = Metadata()
    balance = signed_amount()
    invoice_prefix = invoice_prefix()


class UpdateCustomerSchema(RequestSchema):
    email = fields.Email(validate=validate.Length(max=512), allow_none=True)
    name = text(256, allow_none=True)
    phone = text(20, allow_none=True)
    description = text(350, allow_none=True)
    metadata = Metadata()
    balance = signed_amount()
    invoice_prefix = invoice_prefix()

    @pre_load
    def empty_clears(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Stripe clears a field sent empty (`email=`), as the SDK sends None."""
        clearable = ("email", "name", "phone", "description")
        return {k: None if k in clearable and v == "" else v for k, v in data.items()}


class CreateBalanceTransactionSchema(RequestSchema):
    amount = signed_amount(validate.NoneOf([0], error="must not be 0."), required=True)
    currency = Currency(required=True)
    description = text(350)
    metadata = Metadata()


class UpdateBalanceTransactionSchema(RequestSchema):
    description = text(350, allow_none=True)
    metadata = Metadata()


class ListCustomersSchema(CreatedListParamsSchema):
    # Case-sensitive, as Stripe's (stripe-python's CustomerListParams).
    email = text(512, load_default=None)


class ListBalanceTransactionsSchema(CreatedListParamsSchema):
    invoice = text(200, load_default=None)


_create = CreateCustomerSchema()
_update = UpdateCustomerSchema()
_list = ListCustomersSchema()
_create_txn = CreateBalanceTransactionSchema()
_update_txn = UpdateBalanceTransactionSchema()
_list_txns = ListBalanceTransactionsSchema()


@expandable("cus")
def fetch_customer(customer_id: str, livemode: bool) -> dict[str, Any] | None:
    """The customer, or the stub Stripe shows of a deleted one ("Unlike other objects,
    deleted customers can still be retrieved through the API")."""
    row = customers.get(deps.get_conn(), customer_id, livemode)
    if row is None:
        return None
    return render_deleted_customer(row.id) if row.deleted else render_customer(row)


@includable("customer", "invoice_credit_balance")
def include_credit_balances(customer: dict[str, Any], livemode: bool) -> dict[str, int]:
    """The balance in every currency (Stripe's `invoice_credit_balance`, includable), in
    the sign of `balance` and of each transaction's ending_balance: negative is a credit,
    so the default currency's entry equals `balance`. (Stripe's reference words it the
    other way round, "If positive in a currency, the customer has a credit"; Tally keeps
    one sign across its ledger rather than flip this one field.)"""
    return customers.balances(deps.get_conn(), customer["id"])


@bp.post("")
@documented(_create, ref("customer"))
def create() -> dict[str, Any]:
    params = load(_create, g.params)
    row = create_customer(deps.get_conn(), deps.caller(), params, now=int(time.time()))
    return expand(render_customer(row), params["expand"], deps.caller().livemode)


# A deleted customer is still found, as Stripe's is (marked `deleted`).
_found = {"oneOf": [ref("customer"), ref("deleted_customer")]}
add_retrieve(bp, "/<customer_id>", fetch_customer, "customer", _found)


@bp.post("/<customer_id>")
@documented(_update, ref("customer"))
def update(customer_id: str) -> dict[str, Any]:
    params = load(_update, g.params)
    changes = {k: v for k, v in params.items() if k != "expand"}
    row = update_customer(
        deps.get_conn(), deps.caller(), customer_id, changes, now=int(time.time())
    )
    return expand(render_customer(row), params["expand"], deps.caller().livemode)


@bp.delete("/<customer_id>")
@documented(RETRIEVE, ref("deleted_customer"))
def delete(customer_id: str) -> dict[str, Any]:
    load(RETRIEVE, g.params)
    delete_customer(deps.get_conn(), deps.caller(), customer_id, now=int(time.time()))
    return render_deleted_customer(customer_id)


# Stripe lists the customers that are not deleted.
add_list(
    bp,
    "list_customers",
    "customers",
    each(render_customer),
    _list,
    "customer",
    lambda args: {"deleted": False, "created": args["created"], "email": args["email"]},
)


@bp.get("/search")
@documented(SEARCH, search_of("customer"))
def search_customers() -> dict[str, Any]:
    # Stripe's search, like its list, leaves deleted customers out.
    return search_response(
        "/v1/customers/search", "customers", each(render_customer), {"deleted": False}
    )


def _known_customer(customer_id: str) -> None:
    if customers.get(deps.get_conn(), customer_id, deps.caller().livemode) is None:
        raise NotFound(f"No such customer: '{customer_id}'", param="customer")


@bp.post("/<customer_id>/balance_transactions")
@documented(_create_txn, ref("customer_balance_transaction"))
def create_txn(customer_id: str) -> dict[str, Any]:
    params = load(_create_txn, g.params)
    row = create_balance_transaction(
        deps.get_conn(), deps.caller(), customer_id, params, now=int(time.time())
    )
    return expand(render_balance_transaction(row), params["expand"], deps.caller().livemode)


@bp.get("/<customer_id>/balance_transactions")
@documented(_list_txns, page_of("customer_balance_transaction"))
def list_txns(customer_id: str) -> dict[str, Any]:
    _known_customer(customer_id)

    def filters(args: dict[str, Any]) -> dict[str, Any]:
        invoice_id = args["invoice"]
        if invoice_id is not None:
            invoice = invoices.get(deps.get_conn(), invoice_id, deps.caller().livemode)
            if invoice is None or invoice.customer != customer_id:
                raise InvalidRequest(
                    f"No such invoice of customer {customer_id}: '{invoice_id}'", param="invoice"
                )
        return {"customer": customer_id, "invoice": invoice_id, "created": args["created"]}

    return list_response(
        f"/v1/customers/{customer_id}/balance_transactions",
        "customer_balance_transactions",
        each(render_balance_transaction),
        _list_txns,
        filters=filters,
    )


@bp.get("/<customer_id>/balance_transactions/<txn_id>")
@documented(RETRIEVE, ref("customer_balance_transaction"))
def retrieve_txn(customer_id: str, txn_id: str) -> dict[str, Any]:
    _known_customer(customer_id)

    def fetch(object_id: str, livemode: bool) -> dict[str, Any] | None:
        row = balance_transactions.get(deps.get_conn(), customer_id, object_id, livemode)
        return render_balance_transaction(row) if row else None

    return retrieve_response(fetch, txn_id, "customer_balance_transaction")


@bp.post("/<customer_id>/balance_transactions/<txn_id>")
@documented(_update_txn, ref("customer_balance_transaction"))
def update_txn(customer_id: str, txn_id: str) -> dict[str, Any]:
    params = load(_update_txn, g.params)
    changes = {k: v for k, v in params.items() if k != "expand"}
    if changes.get("description") == "":
        changes["description"] = None  # Stripe clears a field sent empty
    row = update_balance_transaction(deps.get_conn(), deps.caller(), customer_id, txn_id, changes)
    return expand(render_balance_transaction(row), params["expand"], deps.caller().livemode)
