"""Marshmallow schemas as OpenAPI 3.0 schema objects: request schemas become request
bodies and query parameters, render schemas become the objects of responses."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import Schema, fields, validate

# A JSON value of any type, null included.
ANY: dict[str, Any] = {}


def field_schema(field: fields.Field) -> dict[str, Any]:
    """What a request may send for `field`: its type and its validators' limits."""
    described = getattr(field, "openapi", None)
    if callable(described):
        # Tally's own fields (Currency, ObjectId, Metadata) describe themselves.
        out: dict[str, Any] = dict(described())
    elif isinstance(field, fields.Nested):
        out = request_body_schema(_nested_schema(field))
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner)}
    elif isinstance(field, fields.Email):
        out = {"type": "string", "format": "email"}
    else:
        out = _scalar(field)
    for validator in field.validators:
        out.update(_limits(validator, out.get("type")))
    if field.allow_none:
        out["nullable"] = True
    return out


def _scalar(field: fields.Field) -> dict[str, Any]:
    if isinstance(field, fields.Boolean):
        return {"type": "boolean"}
    if isinstance(field, fields.Integer):
        return {"type": "integer"}
    if isinstance(field, fields.Number):
        return {"type": "number"}
    if isinstance(field, fields.String):
        return {"type": "string"}
    if isinstance(field, fields.Dict):
        return {"type": "object"}
    return dict(ANY)


def _limits(validator: Any, json_type: str | None) -> dict[str, Any]:
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Length):
        names = {
            "string": ("minLength", "maxLength"),
            "array": ("minItems", "maxItems"),
            "object": ("minProperties", "maxProperties"),
        }.get(json_type or "")
        if names is None:
            return {}
        limits = {names[0]: validator.min, names[1]: validator.max}
        if validator.equal is not None:
            limits = {names[0]: validator.equal, names[1]: validator.equal}
        return {k: v for k, v in limits.items() if v is not None}
    if isinstance(validator, validate.Range):
        limits = {}
        if validator.min is not None:
            limits["minimum"] = validator.min
            if not validator.min_inclusive:
                limits["exclusiveMinimum"] = True
        if validator.max is not None:
            limits["maximum"] = validator.max
            if not validator.max_inclusive:
                limits["exclusiveMaximum"] = True
        return limits
    # Custom validators (e.g. the event type pattern) are not described; the 400 is.
    return {}


def _nested_schema(field: fields.Nested) -> Schema:
    nested = field.schema
    return nested if isinstance(nested, Schema) else nested()


def request_body_schema(schema: Schema) -> dict[str, Any]:
    """A request schema as a JSON object: its fields, those required, and nothing else
    (Tally refuses unknown parameters)."""
    properties = {
        field.data_key or name: field_schema(field)
        for name, field in schema.fields.items()
        if not field.dump_only
    }
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    required = [
        field.data_key or name
        for name, field in schema.fields.items()
        if field.required and not field.dump_only
    ]
    if required:
        out["required"] = required
    return out


def form_encoding(body: Mapping[str, Any]) -> dict[str, Any]:
    """Stripe's bracket notation for a form body's nested values (`metadata[k]=v`,
    `expand[0]=x`): OpenAPI calls it deepObject."""
    return {
        name: {"style": "deepObject", "explode": True}
        for name, prop in body["properties"].items()
        if _is_structured(prop)
    }


def _is_structured(prop: Mapping[str, Any]) -> bool:
    if prop.get("type") in ("object", "array"):
        return True
    return any(_is_structured(p) for p in prop.get("anyOf", []))


def query_parameters(schema: Schema) -> list[dict[str, Any]]:
    """A request schema as query parameters in bracket notation: a list is `name[]`,
    repeated; a nested schema's fields are `name[field]`."""
    params: list[dict[str, Any]] = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        if isinstance(field, fields.Nested):
            scalar = getattr(field, "openapi_scalar", None)
            if callable(scalar):
                # A range parameter (`created`) also takes one value of its own.
                params.append(_query(key, scalar(), required=False))
            nested = request_body_schema(_nested_schema(field))
            required = set(nested.get("required", ()))
            for inner, prop in nested["properties"].items():
                params.append(_query(f"{key}[{inner}]", prop, required=inner in required))
        elif isinstance(field, fields.List):
            params.append({**_query(f"{key}[]", field_schema(field), field.required)})
        else:
            params.append(_query(key, field_schema(field), field.required))
    return params


def _query(name: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    return param


# --- responses -----------------------------------------------------------------------


def object_schema(
    schema: Schema, overrides: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A render schema as the object it dumps: every field present, its type from the
    field (or from the return annotation of a Method or Function field), nullable where
    it may be None. `overrides` describe fields whose shape the schema cannot tell."""
    overrides = overrides or {}
    properties: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if field.load_only:
            continue
        key = field.data_key or name
        properties[key] = overrides[key] if key in overrides else dumped_schema(schema, field)
    return {"type": "object", "properties": properties, "required": list(properties)}


def dumped_schema(schema: Schema, field: fields.Field) -> dict[str, Any]:
    """What `field` of `schema` dumps."""
    if isinstance(field, fields.Constant):
        return value_schema(field.constant)
    if isinstance(field, fields.Method) and field.serialize_method_name:
        return annotation_schema(getattr(type(schema), field.serialize_method_name))
    if isinstance(field, fields.Function) and field.serialize_func is not None:
        return annotation_schema(field.serialize_func)
    if isinstance(field, fields.List):
        out: dict[str, Any] = {"type": "array", "items": dumped_schema(schema, field.inner)}
    elif isinstance(field, fields.Dict):
        out = {"type": "object"}
    else:
        out = _scalar(field)
    if field.allow_none:
        out["nullable"] = True
    return out


def value_schema(value: Any) -> dict[str, Any]:
    """The schema of a constant: null, a scalar, or an object or array of any content."""
    if value is None:
        return {"nullable": True, "enum": [None]}
    if isinstance(value, bool):
        return {"type": "boolean", "enum": [value]}
    if isinstance(value, int):
        return {"type": "integer", "enum": [value]}
    if isinstance(value, str):
        return {"type": "string", "enum": [value]}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {"type": "object"}
        if value:
            out["properties"] = {k: value_schema(v) for k, v in value.items()}
            out["required"] = list(value)
        return out
    if isinstance(value, Sequence):
        return {"type": "array"}
    return dict(ANY)


def annotation_schema(function: Any) -> dict[str, Any]:
    """The schema of what `function` returns, from its return annotation (a lambda has
    none: any value)."""
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        return dict(ANY)
    if "return" not in hints:
        return dict(ANY)
    return type_schema(hints["return"])


_TYPES = {int: "integer", str: "string", bool: "boolean", float: "number"}


def type_schema(annotation: Any) -> dict[str, Any]:
    """`int | None` → a nullable integer; `dict[str, Any]` → an object; Any → anything."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        out = type_schema(members[0]) if len(members) == 1 else dict(ANY)
        if len(members) < len(typing.get_args(annotation)):
            out["nullable"] = True
        return out
    base = origin or annotation
    if base in _TYPES:
        return {"type": _TYPES[base]}
    if isinstance(base, type) and issubclass(base, Mapping):
        return {"type": "object"}
    if isinstance(base, type) and issubclass(base, list):
        return {"type": "array"}
    return dict(ANY)
