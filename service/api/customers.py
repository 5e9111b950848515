"""/v1/customers"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import fields, validate

from service.api import deps
from service.api.expansion import expand, expandable
from service.api.lists import RETRIEVE, each, list_response, retrieve_response
from service.api.openapi import documented, page_of, ref
from service.api.params import load
from service.api.schemas import ListParamsSchema, Metadata, RequestSchema, text
from service.operations.customers import create_customer
from service.render.customers import render_customer
from service.store import customers

bp = Blueprint("customers", __name__, url_prefix="/v1/customers")


class CreateCustomerSchema(RequestSchema):
    email = fields.Email(validate=validate.Length(max=512))
    name = text(256)
    phone = text(20)
    description = text(350)
    metadata = Metadata()


_create = CreateCustomerSchema()
_list = ListParamsSchema()


@expandable("cus")
def fetch_customer(customer_id: str, livemode: bool) -> dict[str, Any] | None:
    row = customers.get(deps.get_conn(), customer_id, livemode)
    return render_customer(row) if row else None


@bp.post("")
@documented(_create, ref("customer"))
def create() -> dict[str, Any]:
    params = load(_create, g.params)
    row = create_customer(deps.get_conn(), deps.caller(), params, now=int(time.time()))
    return expand(render_customer(row), params["expand"], deps.caller().livemode)


@bp.get("/<customer_id>")
@documented(RETRIEVE, ref("customer"))
def retrieve(customer_id: str) -> dict[str, Any]:
    return retrieve_response(fetch_customer, customer_id, "customer")


@bp.get("")
@documented(_list, page_of("customer"))
def list_customers() -> dict[str, Any]:
    return list_response(
        "/v1/customers", "customers", customers.LIST_COLUMNS, each(render_customer), _list
    )
