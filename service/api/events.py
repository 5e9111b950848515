"""/v1/events: every event Tally emitted, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from service.api import deps
from service.api.lists import each, list_response
from service.api.params import load
from service.api.schemas import ListParamsSchema, RequestSchema, text
from service.domain.events import render_event
from service.errors import NotFound
from service.store import events

bp = Blueprint("events", __name__, url_prefix="/v1/events")


class ListEventsSchema(ListParamsSchema):
    type = text(100, load_default=None)


_list = ListEventsSchema()
_retrieve = RequestSchema()


@bp.get("")
def list_events() -> dict[str, Any]:
    return list_response(
        "/v1/events",
        "events",
        events.LIST_COLUMNS,
        each(render_event),
        _list,
        filters=lambda args: {"type": args["type"]},
    )


@bp.get("/<event_id>")
def retrieve(event_id: str) -> dict[str, Any]:
    load(_retrieve, g.params)
    row = events.get(deps.get_conn(), event_id, deps.caller().livemode)
    if row is None:
        raise NotFound(f"No such event: '{event_id}'", param="id")
    return render_event(row)
