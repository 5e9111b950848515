"""Resending an event to webhook endpoints, like Stripe's resend: a delivery due now."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import Conn
from service.errors import InvalidRequest, NotFound
from service.store import deliveries, events, webhook_endpoints


@dataclass(frozen=True, slots=True)
class Resent:
    """A delivery made due now, and its status before (None: a new delivery)."""

    delivery_id: int
    endpoint_id: str
    previous_status: str | None


def _mode(livemode: bool) -> str:
    return "live" if livemode else "test"


def resend_event(conn: Conn, event_id: str, *, endpoint_id: str | None = None) -> list[Resent]:
    """Make a delivery of the event pending and due now: to `endpoint_id` (subscribed to
    the event's type or not), or else to every enabled endpoint of the event's mode
    subscribed to its type. An endpoint that already has a delivery of the event gets
    that one reset, with a fresh retry schedule (its attempts stay recorded), never a
    second one. One transaction: all the deliveries or none.

    Raises NotFound for an unknown event or endpoint (a deleted one included), and
    InvalidRequest for an endpoint of the other mode, a disabled one, or no endpoint
    to send to; nothing is changed then.
    """
    with conn.transaction():
        event = events.find(conn, event_id)
        if event is None:
            raise NotFound(f"No such event: '{event_id}'", param="event")
        if endpoint_id is None:
            targets = webhook_endpoints.subscribed(
                conn, livemode=event["livemode"], event_type=event["type"]
            )
            if not targets:
                raise InvalidRequest(
                    f"No enabled {_mode(event['livemode'])}-mode webhook endpoint is"
                    f" subscribed to {event['type']}: name one with an endpoint id.",
                    param="endpoint",
                )
        else:
            endpoint = webhook_endpoints.find(conn, endpoint_id)
            if endpoint is None or endpoint["deleted"]:
                raise NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="endpoint")
            if endpoint["livemode"] != event["livemode"]:
                raise InvalidRequest(
                    f"{endpoint_id} is a {_mode(endpoint['livemode'])}-mode endpoint and"
                    f" {event_id} a {_mode(event['livemode'])}-mode event.",
                    param="endpoint",
                )
            if endpoint["status"] != "enabled":
                raise InvalidRequest(
                    f"{endpoint_id} is disabled: enable it first.", param="endpoint"
                )
            targets = [endpoint_id]
        rows = deliveries.make_due(conn, event_id, targets)
    return [Resent(r["id"], r["endpoint_id"], r["previous_status"]) for r in rows]
