"""The webhook_endpoint object; its `secret` appears only in the response that created it."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from service.render.compiled import compiled_dump


class WebhookEndpointSchema(Schema):
    id = fields.String()
    object = fields.Constant("webhook_endpoint")
    api_version = fields.String(allow_none=True)
    application = fields.Constant(None)
    created = fields.Integer()
    description = fields.String(allow_none=True)
    enabled_events = fields.List(fields.String())
    livemode = fields.Boolean()
    metadata = fields.Dict(keys=fields.String(), values=fields.String())
    secret = fields.String(
        metadata={
            "description": "The whsec_ signing secret: in the response that created the "
            "endpoint only."
        }
    )
    status = fields.String(metadata={"enum": ["enabled", "disabled"]})
    url = fields.String()


_endpoint = compiled_dump(WebhookEndpointSchema(exclude=("secret",)))
_created = compiled_dump(WebhookEndpointSchema())


def render_webhook_endpoint(row: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    return (_created if with_secret else _endpoint)(row)


def render_deleted_webhook_endpoint(endpoint_id: str) -> dict[str, Any]:
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
