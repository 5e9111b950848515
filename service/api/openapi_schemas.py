"""apispec's marshmallow converter, taught what Tally's schemas mean: Stripe's bracket
notation for query parameters, the objects render schemas dump, and the fields that
describe themselves."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import get_fields, resolve_schema_cls
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import EXCLUDE, Schema, fields

# A JSON value of any type, null included.
ANY: dict[str, Any] = {}


class Answer(Schema):
    """An object Tally answers with. Dumping writes every field a schema has, so each
    is in the object, but for those named in `optional` (included on request, or in
    one response only); and an object may gain fields, so others are allowed."""

    class Meta:
        unknown = EXCLUDE

    optional: ClassVar[frozenset[str]] = frozenset()
    # Its name under components/schemas; empty: described where it is used.
    component: ClassVar[str] = ""


class Component(fields.Field):
    """An object of components/schemas, by its name (a $ref): objects refer to each
    other, so not by its schema."""

    def __init__(self, name: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.component = name


class Included(fields.Field):
    """A field `expand` includes, whose value `include` makes."""

    def __init__(self, include: Callable[..., Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.include = include


class Expandable(fields.String):
    """An id that `expand` may turn into the object it names (a component's name)."""

    def __init__(self, target: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.target = target


class Converter(OpenAPIConverter):
    """Fields as Tally loads and dumps them (see the module docstring)."""

    def init_attribute_functions(self) -> None:
        super().init_attribute_functions()
        # After apispec's own, so that these override what it made of the field.
        for function in (self.described, self.dumped, self.references):
            self.attribute_functions.insert(-1, function)

    def field2default(self, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        # A constant is the value itself (see `dumped`), not a default.
        return {} if isinstance(field, fields.Constant) else super().field2default(field)

    def described(self, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        """Tally's own fields (Currency, ObjectId, Metadata) describe themselves."""
        describe = getattr(field, "openapi", None)
        return dict(describe()) if callable(describe) else {}

    def dumped(self, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
        """What a Constant, Method or Function field of a render schema dumps, and
        what an Included field holds."""
        if isinstance(field, fields.Constant):
            return value_schema(field.constant)
        if isinstance(field, fields.Method) and field.serialize_method_name:
            return annotation_schema(getattr(type(field.parent), field.serialize_method_name))
        if isinstance(field, fields.Function) and field.serialize_func is not None:
            return annotation_schema(field.serialize_func)
        if isinstance(field, Included):
            return annotation_schema(field.include)
        return {}

    def references(self, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
        """A Component is its object; an Expandable, its id or its object."""
        if isinstance(field, Component):
            return self.spec.components.get_ref("schema", field.component)
        if isinstance(field, Expandable):
            ret.pop("type")
            the_id = self.field2property(fields.String())
            return {"anyOf": [the_id, self.spec.components.get_ref("schema", field.target)]}
        return {}

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        out: dict[str, Any] = super().schema2jsonschema(schema)
        if isinstance(schema, Answer):
            out["required"] = [key for key in out["properties"] if key not in schema.optional]
        return out

    def schema2parameters(self, schema: Any, *, location: str, **kwargs: Any) -> list[Any]:
        """In the query, Stripe's bracket notation: a list is `name[]`, repeated; a
        nested schema's fields are `name[field]`."""
        params: list[dict[str, Any]] = super().schema2parameters(
            schema, location=location, **kwargs
        )
        if location != "query":
            return params
        flat: list[dict[str, Any]] = []
        loaded = get_fields(schema, exclude_dump_only=True).values()
        for param, field in zip(params, loaded, strict=True):
            if isinstance(field, fields.List):
                param["name"] += "[]"
            if not isinstance(field, fields.Nested):
                flat.append(param)
                continue
            scalar = getattr(field, "openapi_scalar", None)
            if callable(scalar):
                # A range parameter (`created`) also takes one value of its own.
                flat.append({**param, "schema": scalar()})
            inner = self.schema2parameters(field.schema, location=location)
            flat += [{**p, "name": f"{param['name']}[{p['name']}]"} for p in inner]
        return flat

    def schema2headers(self, schema: type[Schema]) -> dict[str, Any]:
        """A schema's fields as a response's headers."""
        headers = {}
        for param in self.schema2parameters(schema, location="header"):
            del param["in"]
            headers[param.pop("name")] = param
        return headers


def component_name(schema: Any) -> str:
    """An Answer's `component`: a $ref to it; empty: described where it is used."""
    found = resolve_schema_cls(schema)
    return getattr(found, "component", "") if isinstance(found, type) else ""


class Plugin(MarshmallowPlugin):
    Converter = Converter

    def __init__(self) -> None:
        super().__init__(schema_name_resolver=component_name)


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
