"""Request parameters: Stripe's bracket form encoding (or JSON) decoded into plain
dicts and lists, then validated with a marshmallow schema into Stripe's errors.

Every refusal here is an InvalidParameter: the request failed validation before its
operation began, so no idempotent result is saved for it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import marshmallow
from flask import Request

from service.domain import json_input
from service.errors import InvalidParameter, UnknownParameter

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
# Levels a parameter may nest, counting the parameter itself: `lines[0][amount]` is 3,
# `payment_method_details[billing_details][address][line1]` 4. Rack's query parser
# stops at 32 by default; 16 keeps every walk over the parameters shallow, and makes a
# key nested thousands deep a 400 rather than a RecursionError.
MAX_PARAM_DEPTH = 16
# `expand[0]` is an index; a key of thousands of digits is not (int() refuses it).
MAX_INDEX_DIGITS = 9


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn `a[b][0]=x`, `expand[]=y`, `expand[0]=y` pairs into nested values."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            raise InvalidParameter(f"Invalid parameter name: {raw_key}", param=raw_key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        if len(path) > MAX_PARAM_DEPTH:
            raise InvalidParameter(
                f"Invalid {path[0]}: it is nested more than {MAX_PARAM_DEPTH} levels deep.",
                param=path[0],
            )
        node: Any = root
        for depth, segment in enumerate(path[:-1]):
            nxt = path[depth + 1]
            child = node.get(segment) if isinstance(node, dict) else None
            if child is None:
                child = [] if nxt == "" else {}
                _put(node, segment, child, raw_key)
            elif not isinstance(child, (dict, list)):
                raise InvalidParameter(f"Invalid parameter: {raw_key}", param=raw_key)
            node = child
        _put(node, path[-1], value, raw_key)
    # Only values become lists: the parameters themselves stay named, even `0=x`.
    return {name: _lists_from_indexes(value) for name, value in root.items()}


def _put(node: Any, segment: str, value: Any, raw_key: str) -> None:
    if isinstance(node, list):
        if segment != "":
            raise InvalidParameter(f"Invalid array parameter: {raw_key}", param=raw_key)
        node.append(value)
    elif segment == "":
        raise InvalidParameter(f"Invalid array parameter: {raw_key}", param=raw_key)
    else:
        node[segment] = value


def _lists_from_indexes(value: Any) -> Any:
    """`{"0": a, "1": b}` (how the stripe SDK sends arrays) becomes `[a, b]`."""
    if isinstance(value, list):
        return [_lists_from_indexes(v) for v in value]
    if not isinstance(value, dict):
        return value
    converted = {k: _lists_from_indexes(v) for k, v in value.items()}
    if converted and all(_is_index(k) for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _is_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and len(key) <= MAX_INDEX_DIGITS


def request_params(request: Request) -> dict[str, Any]:
    """All parameters of a request: the query string, then the body (form or JSON)."""
    if "\x00" in request.path:
        raise InvalidParameter("The request URL contains a NUL character.")
    params = _params(request)
    _refuse_nul(params, "")
    return params


def _refuse_nul(value: Any, name: str) -> None:
    """PostgreSQL text cannot hold NUL: refuse it here, naming the parameter."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidParameter(f"Invalid {name}: contains a NUL character.", param=name)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(str(key), f"{name}[{key}]" if name else str(key))
            _refuse_nul(item, f"{name}[{key}]" if name else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{name}[{index}]")


def _params(request: Request) -> dict[str, Any]:
    params = decode_form(parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True))
    if request.method in ("GET", "DELETE"):
        return params
    body = request.get_data(cache=True)
    if not body:
        return params
    if (request.mimetype or "") == "application/json":
        try:
            parsed = json_input.loads(body, max_depth=MAX_PARAM_DEPTH)
        except json_input.JSONRefused as refused:
            if refused.key is None:
                raise InvalidParameter(f"Invalid JSON body: {refused}.") from None
            raise InvalidParameter(
                f"Invalid {refused.key}: {refused}.", param=refused.key
            ) from None
        if not isinstance(parsed, dict):
            raise InvalidParameter("A JSON body must be an object.")
        params.update(parsed)
        return params
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidParameter("Invalid form-encoded body.") from None
    params.update(decode_form(pairs))
    return params


def load(schema: marshmallow.Schema, params: dict[str, Any]) -> dict[str, Any]:
    """Validate with `schema`, turning marshmallow's messages into one Stripe error."""
    try:
        return schema.load(params)
    except marshmallow.ValidationError as err:
        param, message = _first_error(err.messages)
        if message == "Unknown field.":
            raise UnknownParameter(f"Received unknown parameter: {param}", param=param) from None
        if message == "Missing data for required field.":
            raise InvalidParameter(
                f"Missing required param: {param}.", param=param, code="parameter_missing"
            ) from None
        code = "parameter_invalid_integer" if message == "Not a valid integer." else None
        raise InvalidParameter(f"Invalid {param}: {message}", param=param, code=code) from None


def _first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    if isinstance(messages, dict):
        key, inner = next(iter(messages.items()))
        name = f"{prefix}[{key}]" if prefix else str(key)
        return _first_error(inner, name)
    if isinstance(messages, list) and messages:
        if isinstance(messages[0], str):
            return prefix, messages[0].rstrip(".") + "."
        return _first_error(messages[0], prefix)
    return prefix, str(messages)
