"""/v1/webhook_endpoints: where Tally delivers its events."""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Blueprint, g
from marshmallow import ValidationError, fields, validate

from service.api import deps
from service.api.lists import add_list, add_retrieve, each, fetcher
from service.api.openapi import documented, ref
from service.api.params import load
from service.api.schemas import FormBoolean, ListParamsSchema, Metadata, RequestSchema, text
from service.operations.webhook_endpoints import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    update_webhook_endpoint,
)
from service.render.webhook_endpoints import (
    render_deleted_webhook_endpoint,
    render_webhook_endpoint,
)
from service.store import webhook_endpoints

bp = Blueprint("webhook_endpoints", __name__, url_prefix="/v1/webhook_endpoints")

_EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")


def _check_event_types(types: list[str]) -> None:
    if not types:
        raise ValidationError("must list at least one event type, or '*'.")
    for event_type in types:
        if not _EVENT_TYPE.match(event_type):
            raise ValidationError(f"'{event_type}' is not an event type.")


def _enabled_events(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Length(max=100)),
        validate=[validate.Length(max=256), _check_event_types],
        **kwargs,
    )


class CreateEndpointSchema(RequestSchema):
    url = text(2048, required=True)
    enabled_events = _enabled_events(required=True)
    description = text(5000)
    api_version = text(64)
    metadata = Metadata()


class UpdateEndpointSchema(RequestSchema):
    url = text(2048)
    enabled_events = _enabled_events()
    description = text(5000)
    disabled = FormBoolean()
    metadata = Metadata()


_create = CreateEndpointSchema()
_update = UpdateEndpointSchema()
_retrieve = RequestSchema()
_list = ListParamsSchema()


@bp.post("")
@documented(_create, ref("webhook_endpoint"))
def create() -> dict[str, Any]:
    params = load(_create, g.params)
    row = create_webhook_endpoint(
        deps.get_conn(),
        deps.caller(),
        params,
        allow_private_urls=deps.settings().allow_private_webhook_urls,
        now=int(time.time()),
    )
    return render_webhook_endpoint(row, with_secret=True)


fetch_webhook_endpoint = fetcher(webhook_endpoints.get, render_webhook_endpoint)


add_retrieve(
    bp, "/<endpoint_id>", fetch_webhook_endpoint, "webhook endpoint", ref("webhook_endpoint")
)


@bp.post("/<endpoint_id>")
@documented(_update, ref("webhook_endpoint"))
def update(endpoint_id: str) -> dict[str, Any]:
    params = load(_update, g.params)
    params.pop("expand", None)
    row = update_webhook_endpoint(
        deps.get_conn(),
        deps.caller(),
        endpoint_id,
        params,
        allow_private_urls=deps.settings().allow_private_webhook_urls,
    )
    return render_webhook_endpoint(row)


@bp.delete("/<endpoint_id>")
@documented(_retrieve, ref("deleted_webhook_endpoint"))
def delete(endpoint_id: str) -> dict[str, Any]:
    load(_retrieve, g.params)
    delete_webhook_endpoint(deps.get_conn(), deps.caller(), endpoint_id)
    return render_deleted_webhook_endpoint(endpoint_id)


add_list(
    bp,
    "list_endpoints",
    "webhook_endpoints",
    each(render_webhook_endpoint),
    _list,
    "webhook_endpoint",
    lambda _args: {"deleted": False},
)
