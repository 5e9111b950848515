"""Stripe's search query language (https://docs.stripe.com/search#search-query-language),
parsed into clauses: one function per level of the grammar.

    query      := clause (connective clause)*
    connective := " AND " | " OR " | " "          (AND and OR not both)
    clause     := ["-"] field operator value
    field      := name | "metadata[" quoted "]"
    operator   := ":" | "~" | ">=" | "<=" | ">" | "<"
    value      := quoted | integer | "null"

Stripe's rules it enforces: "You can combine up to 10 query clauses ... You can't
combine AND and OR in the same query", "You must use quotation marks around string
values. Quotation marks are optional for numeric values", "You can escape quotes
inside of quotes with a backslash", "substrings must be a minimum of 3 characters",
and "Using an unsupported operator, such as specifying greater than (>) on a string,
returns an error". Every refusal names the parameter `query`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from service.errors import InvalidRequest

# What a field is, which decides the operators it takes (Stripe's field types, with
# `id` for a token that is an object's id, compared exactly).
FieldKind = Literal["id", "token", "string", "numeric", "metadata"]
Operator = Literal[":", "~", ">", "<", ">=", "<="]

MAX_CLAUSES = 10
MIN_SUBSTRING = 3
_OPERATORS: dict[FieldKind, tuple[Operator, ...]] = {
    "id": (":",),
    "token": (":",),
    "metadata": (":",),
    "string": (":", "~"),
    "numeric": (":", ">", "<", ">=", "<="),
}
_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_BARE = re.compile(r"[^\s]+")
_CONNECTIVE = re.compile(r"(and|or)\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    kind: FieldKind
    operator: Operator
    # None is Stripe's `null`: the field is empty (or the metadata key absent).
    value: str | int | None
    negated: bool = False
    metadata_key: str | None = None


@dataclass(frozen=True, slots=True)
class Query:
    clauses: tuple[Clause, ...]
    connective: Literal["AND", "OR"]


def parse(text: str, fields: Mapping[str, FieldKind]) -> Query:
    """The clauses of `text` over `fields` (name to kind), or a 400 naming `query`."""
    return _Parser(text, fields).query()


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid query: {message}", param="query")


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, FieldKind]):
        self.text = text
        self.at = 0
        self.fields = fields

    def query(self) -> Query:
        self._skip_spaces()
        if self.at == len(self.text):
            raise _refuse("it is empty.")
        clauses = [self._clause()]
        connectives: set[str] = set()
        while self._skip_spaces():
            if self.at == len(self.text):
                break
            connectives.add(self._connective())
            clauses.append(self._clause())
        if self.at != len(self.text):
            raise _refuse(f"expected a space or the end after position {self.at}.")
        if len(connectives) > 1:
            raise _refuse("AND and OR cannot be combined in one query.")
        if len(clauses) > MAX_CLAUSES:
            raise _refuse(f"it has more than {MAX_CLAUSES} clauses.")
        connective: Literal["AND", "OR"] = "OR" if connectives == {"OR"} else "AND"
        return Query(tuple(clauses), connective)

    def _connective(self) -> str:
        """AND or OR (any case) followed by a space; else clauses side by side (AND)."""
        match = _CONNECTIVE.match(self.text, self.at)
        if match is None:
            return "AND"
        self.at = match.end()
        return match.group(1).upper()

    def _clause(self) -> Clause:
        start = self.at
        negated = self._take("-")
        field, metadata_key = self._field()
        kind = self.fields[field]
        operator = self._operator()
        if operator not in _OPERATORS[kind]:
            raise _refuse(f"the field {field} does not take the operator {operator}.")
        value = self._value()
        if value is None and operator != ":":
            raise _refuse(f"null takes the operator : (at position {start}).")
        if kind == "numeric" and value is not None:
            value = _integer(value, field)
        elif isinstance(value, int):
            value = str(value)
        if operator == "~" and len(str(value)) < MIN_SUBSTRING:
            raise _refuse(f"a substring must be at least {MIN_SUBSTRING} characters.")
        if isinstance(value, str) and not value.strip():
            raise _refuse(f"the value for {field} is empty.")
        return Clause(field, kind, operator, value, negated, metadata_key)

    def _field(self) -> tuple[str, str | None]:
        match = _NAME.match(self.text, self.at)
        if match is None:
            raise _refuse(f"expected a field name at position {self.at}.")
        name = match.group()
        if name not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise _refuse(f"{name} is not a field you can search on (fields: {known}).")
        self.at = match.end()
        if self.fields[name] != "metadata":
            return name, None
        if not self._take("["):
            raise _refuse("write a metadata field as metadata['key'].")
        key = self._quoted()
        if not key or not self._take("]"):
            raise _refuse("write a metadata field as metadata['key'].")
        return name, key

    def _operator(self) -> Operator:
        for operator in (">=", "<=", ":", "~", ">", "<"):
            if self.text.startswith(operator, self.at):
                self.at += len(operator)
                return operator
        raise _refuse(f"expected an operator (: ~ > < >= <=) at position {self.at}.")

    def _value(self) -> str | int | None:
        if self.at < len(self.text) and self.text[self.at] in "'\"":
            return self._quoted()
        match = _BARE.match(self.text, self.at)
        if match is None:
            raise _refuse(f"expected a value at position {self.at}.")
        bare = match.group()
        if bare.lower() == "null":
            self.at = match.end()
            return None
        number = _INTEGER.match(bare)
        if number is None:
            raise _refuse(f"string values must be quoted (at position {self.at}).")
        self.at += number.end()
        return int(number.group())

    def _quoted(self) -> str:
        """A value in single or double quotes, where a backslash escapes the next
        character."""
        if self.at >= len(self.text) or self.text[self.at] not in "'\"":
            raise _refuse(f"expected a quoted value at position {self.at}.")
        quote = self.text[self.at]
        self.at += 1
        out: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if char == quote:
                return "".join(out)
            if char == "\\" and self.at < len(self.text):
                char = self.text[self.at]
                self.at += 1
            out.append(char)
        raise _refuse("a quoted value is not closed.")

    def _take(self, literal: str) -> bool:
        if self.text.startswith(literal, self.at):
            self.at += len(literal)
            return True
        return False

    def _skip_spaces(self) -> bool:
        """Skip whitespace; whether there was any (clauses are separated by it)."""
        start = self.at
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1
        return self.at > start


def _integer(value: str | int, field: str) -> int:
    if isinstance(value, int):
        return value
    if _INTEGER.fullmatch(value) is None:
        raise _refuse(f"{field} takes an integer.")
    return int(value)
