"""Shared marshmallow fields and the base request schema for every endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow.types import StrSequenceOrSet

from service.domain.ids import has_prefix
from service.domain.money import CURRENCIES, MAX_AMOUNT
from service.store.pages import Range

MAX_STRING = 5000


class RequestSchema(Schema):
    """Unknown parameters are refused; `expand` is accepted everywhere."""

    class Meta:
        unknown = RAISE

    expand = fields.List(fields.String(validate=validate.Length(max=200)), load_default=list)


def text(max_length: int = MAX_STRING, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


def amount(**kwargs: Any) -> fields.Integer:
    """Integer minor units, 0 to 99,999,999; floats and strings like "1.5" are refused."""
    return fields.Integer(strict=False, validate=validate.Range(0, MAX_AMOUNT), **kwargs)


def signed_amount(*checks: validate.Validator, **kwargs: Any) -> fields.Integer:
    """Integer minor units, -99,999,999 to 99,999,999, where a negative amount is a credit
    (an invoice item's, a balance transaction's)."""
    return fields.Integer(
        strict=False, validate=[validate.Range(-MAX_AMOUNT, MAX_AMOUNT), *checks], **kwargs
    )


class Currency(fields.String):
    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(CURRENCIES)}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs)
        if code not in CURRENCIES:
            raise ValidationError("must be a supported lowercase ISO currency code.")
        return code


class ObjectId(fields.String):
    """An id of one kind of object, recognised by its prefix."""

    def __init__(self, prefix: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.prefix = prefix

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{self.prefix}_[A-Za-z0-9]{{1,64}}$"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text_value = super()._deserialize(value, attr, data, **kwargs)
        if not has_prefix(text_value, self.prefix):
            raise ValidationError(f"must be an id starting with {self.prefix}_.")
        return text_value


class Metadata(fields.Field):
    """Stripe's metadata: up to 50 keys of 40 characters, values of 500."""

    def openapi(self) -> dict[str, Any]:
        # An empty string clears it, as in Stripe.
        return {
            "anyOf": [
                {
                    "type": "object",
                    "maxProperties": 50,
                    "additionalProperties": {"type": "string", "maxLength": 500},
                },
                {"type": "string", "enum": [""]},
            ]
        }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise ValidationError("must be a hash of string keys and values.")
        if len(value) > 50:
            raise ValidationError("may have at most 50 keys.")
        out: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > 40:
                raise ValidationError(f"key {key!r} must be 1 to 40 characters.")
            if isinstance(item, (dict, list)):
                raise ValidationError(f"value of {key!r} must be a string.")
            item_text = item if isinstance(item, str) else str(item)
            if len(item_text) > 500:
                raise ValidationError(f"value of {key!r} must be at most 500 characters.")
            out[key] = item_text
        return out


class FormBoolean(fields.Boolean):
    truthy = {"true", True}  # noqa: RUF012
    falsy = {"false", False}  # noqa: RUF012


class ListParamsSchema(RequestSchema):
    limit = fields.Integer(strict=False, validate=validate.Range(1, 100), load_default=10)
    starting_after = text(200, load_default=None)
    ending_before = text(200, load_default=None)


# A timestamp a range filter compares with: past 2**40 (year 36812) is no time a row
# holds, and below 2**63 PostgreSQL's bigint takes it rather than a 500.
MAX_TIMESTAMP = 2**40


def _bound() -> fields.Integer:
    return fields.Integer(strict=False, validate=validate.Range(0, MAX_TIMESTAMP))


class _RangeBounds(Schema):
    class Meta:
        unknown = RAISE

    gt = _bound()
    gte = _bound()
    lt = _bound()
    lte = _bound()


class TimestampRange(fields.Nested):
    """Stripe's range parameter on a timestamp (`created`, `due_date`): an integer it
    equals, or a hash of `gt`, `gte`, `lt`, `lte` bounds. Loads as a store Range."""

    def __init__(self, **kwargs: Any):
        super().__init__(_RangeBounds, load_default=None, **kwargs)

    def openapi_scalar(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP}

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | StrSequenceOrSet | None = None,
        **kwargs: Any,
    ) -> Range:
        if isinstance(value, dict):
            return Range(**super()._deserialize(value, attr, data, partial, **kwargs))
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return Range(eq=_bound().deserialize(value))
        raise ValidationError("must be an integer or a hash of gt, gte, lt and lte.")


class CreatedListParamsSchema(ListParamsSchema):
    """A list Stripe filters on `created`."""

    created = TimestampRange()
