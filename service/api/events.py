"""/v1/events: every event Tally emitted, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from service.api import deps
from service.api.lists import RETRIEVE, each, list_response, retrieve_response
from service.api.openapi import documented, page_of, ref
from service.api.schemas import ListParamsSchema, text
from service.domain.events import render_event
from service.store import events

bp = Blueprint("events", __name__, url_prefix="/v1/events")


class ListEventsSchema(ListParamsSchema):
    type = text(100, load_default=None)


_list = ListEventsSchema()


@bp.get("")
@documented(_list, page_of("event"))
def list_events() -> dict[str, Any]:
    return list_response(
        "/v1/events",
        "events",
        each(render_event),
        _list,
        filters=lambda args: {"type": args["type"]},
    )


def fetch_event(event_id: str, livemode: bool) -> dict[str, Any] | None:
    row = events.get(deps.get_conn(), event_id, livemode)
    return render_event(row) if row else None


@bp.get("/<event_id>")
@documented(RETRIEVE, ref("event"))
def retrieve(event_id: str) -> dict[str, Any]:
    return retrieve_response(fetch_event, event_id, "event")
