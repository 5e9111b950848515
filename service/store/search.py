"""Search queries (service/domain/search_query.py) as SQL conditions on the tables
Stripe searches: the fields each table answers to, and what each clause means there."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from service.domain.search_query import Clause, FieldKind, Query
from service.store.pages import like_literal

# Stripe's query fields for customers and invoices that Tally holds, each a column of
# the same name (docs.stripe.com/search#supported-query-fields-for-each-resource).
# A closed set: conditions name only these columns.
FIELDS: dict[str, dict[str, FieldKind]] = {
    "customers": {
        "created": "numeric",
        "email": "string",
        "metadata": "metadata",
        "name": "string",
        "phone": "string",
    },
    "invoices": {
        "created": "numeric",
        "currency": "token",
        "customer": "id",
        "metadata": "metadata",
        "number": "string",
        "status": "string",
        "total": "numeric",
    },
}

_COMPARISONS = {":": "=", ">": ">", "<": "<", ">=": ">=", "<=": "<="}


def condition(query: Query) -> tuple[sql.Composable, dict[str, Any]]:
    """The SQL condition `query` (parsed over one table's FIELDS) sets on its rows, with
    its parameters (named `search_N`, as pages.list_page expects)."""
    params: dict[str, Any] = {}
    parts = [_negated(clause, _clause(clause, params)) for clause in query.clauses]
    return sql.SQL(f" {query.connective} ").join(parts), params


def _negated(clause: Clause, condition: sql.Composable) -> sql.Composable:
    # A negated clause matches the rows the clause does not, those whose field is
    # NULL included (NOT NULL would drop them).
    if not clause.negated:
        return sql.SQL("({})").format(condition)
    return sql.SQL("NOT coalesce(({}), false)").format(condition)


def _bind(params: dict[str, Any], value: Any) -> sql.Placeholder:
    name = f"search_{len(params)}"
    params[name] = value
    return sql.Placeholder(name)


def _clause(clause: Clause, params: dict[str, Any]) -> sql.Composable:
    column = sql.Identifier(clause.field)
    if clause.kind == "metadata":
        key = _bind(params, clause.metadata_key)
        if clause.value is None:
            return sql.SQL("NOT ({} ? {})").format(column, key)
        # The value, case-insensitively; said twice: the containment is what the GIN
        # index of migration 0028 answers, the comparison what a scan checks cheaply
        # (PostgreSQL evaluates it first: the function costs more).
        value = _bind(params, clause.value)
        return sql.SQL(
            "lower({0} ->> {1}) = lower({2})"
            " AND metadata_search_values({0}) @> jsonb_build_object({1}::text, lower({2}))"
        ).format(column, key, value)
    if clause.value is None:
        if clause.kind == "string":
            return sql.SQL("({0} IS NULL OR {0} = '')").format(column)
        return sql.SQL("{} IS NULL").format(column)
    if clause.kind == "numeric":
        operator = sql.SQL(_COMPARISONS[clause.operator])
        return sql.SQL("{} {} {}").format(column, operator, _bind(params, clause.value))
    if clause.kind == "id":
        # Ids are compared exactly: two ids differing in case are two objects.
        return sql.SQL("{} = {}").format(column, _bind(params, clause.value))
    if clause.kind == "token":
        return sql.SQL("lower({}) = lower({})").format(column, _bind(params, clause.value))
    if clause.operator == "~":
        pattern = "%" + like_literal(str(clause.value)) + "%"
        return sql.SQL("{} ILIKE {}").format(column, _bind(params, pattern))
    return sql.SQL("{} ~* {}").format(column, _bind(params, _phrase(str(clause.value))))


def _phrase(value: str) -> str:
    """Stripe: "An exact match on a string type returns any record where that record
    contains all of the words from the query in the same order" (name:"one two three"
    matches "one two three four"). As a case-insensitive regular expression: the words,
    separated by spaces, not inside a longer word."""
    words = [_regex_literal(word) for word in value.split()]
    return r"(^|[^[:alnum:]])" + r"\s+".join(words) + r"($|[^[:alnum:]])"


def _regex_literal(word: str) -> str:
    # In PostgreSQL's regular expressions a backslash before a character that is not
    # alphanumeric stands for that character.
    return "".join(char if char.isalnum() else "\\" + char for char in word)
