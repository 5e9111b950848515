"""A schema's dump, compiled to a loop over its fields: the same dict, a fraction of the time.

marshmallow's `Schema.dump` calls several functions per field (serialize, get_value,
the accessor, _serialize), which made an invoice's render (80 fields, most of them
constants) cost about as much as a round trip to PostgreSQL. `compiled_dump(schema)`
reads the schema once and returns a function that does, for the field types the
renderers use, what their `_serialize` does; any other field type, a field whose
attribute a row lacks (marshmallow would fall back to a default or omit it), and a
schema with dump hooks are left to marshmallow. The schema stays the one description:
/openapi.json documents it, and tests/unit/test_compiled_dump.py holds each compiled
renderer equal to its schema's own dump.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import ensure_text_type

Dump = Callable[[Any], dict[str, Any]]

# How each step finds its value: a constant, a key of the row (converted as the field
# type does), a function of the whole row, or the field itself (marshmallow's way).
_CONSTANT, _STRING, _INTEGER, _AS_IS, _MAPPING, _OF_ROW, _FIELD = range(7)


def compiled_dump(schema: Schema) -> Dump:
    """A function doing what `schema.dump(row)` does for one row."""
    if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]:  # marshmallow's own way
        return schema.dump
    steps = [_step(name, field) for name, field in schema.dump_fields.items()]
    # Every key in the schema's order, the constants already in place (most of an
    # invoice's fields): a copy of this is the dump's start, in one C call, and only
    # the other fields are looked at per row. Assigning to a key keeps its place, so
    # the order is the schema's, as marshmallow's; a key marshmallow would omit is
    # deleted.
    template = {key: what if how == _CONSTANT else None for key, how, what, _ in steps}
    variable = [step for step in steps if step[1] != _CONSTANT]

    def dump(row: Any) -> dict[str, Any]:
        out = template.copy()
        for key, how, what, named in variable:
            if how == _OF_ROW:
                out[key] = what(row)
                continue
            if how == _FIELD:
                _dump_field(out, key, named, row, schema)
                continue
            try:
                value = row[what]
            except (KeyError, IndexError, TypeError, AttributeError):
                _dump_field(out, key, named, row, schema)
                continue
            if value is None:
                out[key] = None
            elif how == _STRING:
                out[key] = value if type(value) is str else ensure_text_type(value)
            elif how == _INTEGER:
                out[key] = value if type(value) is int else int(value)
            elif how == _MAPPING:
                out[key] = dict(value)
            else:
                out[key] = value
        return out

    return dump


_Named = tuple[str, fields.Field]
_COMPILED = (
    fields.Constant,
    fields.Method,
    fields.Function,
    fields.String,
    fields.Integer,
    fields.Boolean,
    fields.Raw,
    fields.Dict,
)


def _step(name: str, field: fields.Field) -> tuple[str, int, Any, _Named]:
    """(output key, how, what, the field by name) for one field."""
    key = field.data_key if field.data_key is not None else name
    attribute = field.attribute if field.attribute is not None else name
    named = (name, field)
    # Exact types only: a subclass may serialize in its own way.
    exact = type(field) in _COMPILED
    if exact and isinstance(field, fields.Constant):
        return key, _CONSTANT, field.constant, named
    if exact and isinstance(field, fields.Method) and field._serialize_method is not None:
        return key, _OF_ROW, field._serialize_method, named
    if exact and isinstance(field, fields.Function) and field.serialize_func is not None:
        return key, _OF_ROW, field.serialize_func, named
    if not exact or "." in attribute:  # a path into nested objects
        return key, _FIELD, None, named
    if isinstance(field, fields.String):
        return key, _STRING, attribute, named
    if isinstance(field, fields.Integer) and not field.as_string:
        return key, _INTEGER, attribute, named
    if isinstance(field, fields.Boolean | fields.Raw):
        return key, _AS_IS, attribute, named  # neither converts on dump
    if isinstance(field, fields.Dict) and field.key_field is None and field.value_field is None:
        return key, _MAPPING, attribute, named
    return key, _FIELD, None, named


def _dump_field(out: dict[str, Any], key: str, named: _Named, row: Any, schema: Schema) -> None:
    """What Schema._serialize does for one field."""
    name, field = named
    value = field.serialize(name, row, accessor=schema.get_attribute)
    if value is missing:
        del out[key]  # in the template; marshmallow omits it
    else:
        out[key] = value
