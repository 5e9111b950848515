"""The read responses resources share: one object, a list page, a search page."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, g
from marshmallow import fields, validate

from service.api import deps
from service.api.expansion import Fetcher, expand
from service.api.openapi import Returns, documented, page_of
from service.api.params import load
from service.api.schemas import ListParamsSchema, RequestSchema, text
from service.db import Conn
from service.domain import search_query
from service.errors import InvalidRequest, NotFound
from service.render.lists import list_object
from service.store import search
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


def add_list(
    bp: Blueprint,
    endpoint: str,
    table: str,
    render: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    schema: ListParamsSchema,
    item: str,
    filters: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """GET the blueprint's root: `list_response` of `table`, a list of `item` objects,
    filtered by `filters` (by default, on each parameter `schema` adds to a list's)."""
    own = sorted(schema.fields.keys() - _LIST_PARAMS)

    @documented(schema, page_of(item))
    def view() -> dict[str, Any]:
        chosen = filters or (lambda args: {name: args[name] for name in own})
        return list_response(str(bp.url_prefix), table, render, schema, chosen)

    bp.add_url_rule("", endpoint=endpoint, view_func=view, methods=["GET"])


# Every list's parameters: the page and `expand`.
_LIST_PARAMS = ListParamsSchema().fields.keys()


def each(
    render: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """A page renderer from a renderer of one row."""
    return lambda rows: [render(row) for row in rows]


Row = TypeVar("Row")  # what a store's get returns: a dict, or a typed row


def fetcher(
    get: Callable[[Conn, str, bool], Row | None], render: Callable[[Row], dict[str, Any]]
) -> Fetcher:
    """Fetch an object: the row `get` finds by id in a mode, rendered; else None."""

    def fetch(object_id: str, livemode: bool) -> dict[str, Any] | None:
        row = get(deps.get_conn(), object_id, livemode)
        return render(row) if row else None

    return fetch


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


class SearchParamsSchema(RequestSchema):
    """What GET /v1/<objects>/search accepts (stripe-python's InvoiceSearchParams)."""

    query = text(5000, required=True)
    limit = fields.Integer(strict=False, validate=validate.Range(1, 100), load_default=10)
    page = text(5000, load_default=None)


SEARCH = SearchParamsSchema()


def add_retrieve(bp: Blueprint, rule: str, fetch: Fetcher, noun: str, returns: Returns) -> None:
    """GET `rule`, whose one variable is an object's id: `retrieve_response` of it."""

    @documented(RETRIEVE, returns)
    def retrieve(**ids: str) -> dict[str, Any]:
        (object_id,) = ids.values()
        return retrieve_response(fetch, object_id, noun)

    bp.add_url_rule(rule, view_func=retrieve, methods=["GET"])


def search_response(
    url: str,
    table: str,
    render: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One page of `table`'s rows matching the search `query` (and `filters`, as a list
    takes them), newest first, as Stripe's search_result; `next_page` continues it."""
    args = load(SEARCH, g.params)
    livemode = deps.caller().livemode
    condition, params = search.condition(search_query.parse(args["query"], search.FIELDS[table]))
    rows, has_more = list_page(
        deps.get_conn(),
        table,
        livemode=livemode,
        filters=filters or {},
        limit=args["limit"],
        starting_after=_after(args["page"], args["query"]),
        condition=condition,
        condition_params=params,
    )
    result = {
        "object": "search_result",
        "data": render(rows),
        "has_more": has_more,
        "next_page": _next_page(rows[-1]["id"], args["query"]) if has_more else None,
        "url": url,
    }
    return expand(result, args["expand"], livemode)


# A page token is the id of the last row shown and a digest of the query it belongs
# to, so a token used with another query is refused rather than silently applied.
def _next_page(last_id: str, query: str) -> str:
    token = f"{last_id}:{_digest(query)}".encode()
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _after(page: str | None, query: str) -> str | None:
    if page is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(page + "=" * (-len(page) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    last_id, _, digest = decoded.rpartition(":")
    if not last_id or digest != _digest(query):
        raise InvalidRequest(
            "Invalid page: give the next_page of a search with this same query.", param="page"
        )
    return last_id


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]
