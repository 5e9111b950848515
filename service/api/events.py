"""/v1/events: every event Tally emitted, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import fields, validate

from service.api.lists import add_list, add_retrieve, each, fetcher
from service.api.openapi import ref
from service.api.schemas import CreatedListParamsSchema, FormBoolean, text
from service.domain.events import render_event
from service.errors import InvalidRequest
from service.store import events
from service.store.pages import AnyOf, Like, like_literal

bp = Blueprint("events", __name__, url_prefix="/v1/events")


class ListEventsSchema(CreatedListParamsSchema):
    # stripe-python's EventListParams: `type` is "a specific event name, or group of
    # events using * as a wildcard"; `types` "an array of up to 20 strings containing
    # specific event names ... You may pass either type or types, but not both."
    type = text(100, load_default=None)
    types = fields.List(text(100), validate=validate.Length(min=1, max=20), load_default=None)
    delivery_success = FormBoolean(load_default=None)


_list = ListEventsSchema()


def _filters(args: dict[str, Any]) -> dict[str, Any]:
    if args["type"] is not None and args["types"] is not None:
        raise InvalidRequest("You may pass either type or types, but not both.", param="types")
    if args["types"] is not None:
        event_type: str | AnyOf | Like | None = AnyOf(tuple(args["types"]))
    else:
        event_type = _event_type(args["type"])
    return {
        "type": event_type,
        "created": args["created"],
        "delivery_success": args["delivery_success"],
    }


add_list(bp, "list_events", "events", each(render_event), _list, "event", _filters)


def _event_type(name: str | None) -> str | Like | None:
    """`invoice.*` matches every invoice event: `*` stands for any characters."""
    if name is None or "*" not in name:
        return name
    return Like(like_literal(name).replace("*", "%"))


fetch_event = fetcher(events.get, render_event)


add_retrieve(bp, "/<event_id>", fetch_event, "event", ref("event"))
