"""The two read responses every resource shares: one object, and a list page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g

from service.api import deps
from service.api.expansion import Fetcher, expand
from service.api.params import load
from service.api.schemas import ListParamsSchema, RequestSchema
from service.errors import NotFound
from service.render.lists import list_object
from service.store.pages import list_page


def list_response(
    url: str,
    table: str,
    render: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    schema: ListParamsSchema,
    filters: Callable[[dict[str, Any]], dict[str, Any]] = lambda _: {},
) -> dict[str, Any]:
    """Validate the list parameters with `schema`, fetch the page, render and expand.

    `render` takes the page's rows at once (see `each`), so a renderer that needs
    more data can fetch it for the whole page in one query.
    """
    args = load(schema, g.params)
    rows, has_more = list_page(
        deps.get_conn(),
        table,
        livemode=deps.caller().livemode,
        filters=filters(args),
        limit=args["limit"],
        starting_after=args["starting_after"],
        ending_before=args["ending_before"],
    )
    page = list_object(render(rows), has_more=has_more, url=url)
    return expand(page, args["expand"], deps.caller().livemode)


def each(
    render: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """A page renderer from a renderer of one row."""
    return lambda rows: [render(row) for row in rows]


# What GET /v1/<objects>/:id accepts: only `expand`.
RETRIEVE = RequestSchema()


def retrieve_response(fetch: Fetcher, object_id: str, noun: str) -> dict[str, Any]:
    """The object `fetch` finds for this id in the caller's mode, expanded; else a 404."""
    params = load(RETRIEVE, g.params)
    livemode = deps.caller().livemode
    found = fetch(object_id, livemode)
    if found is None:
        raise NotFound(f"No such {noun}: '{object_id}'", param="id")
    return expand(found, params["expand"], livemode)
