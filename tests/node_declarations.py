"""The fields stripe-node declares for the objects Tally renders, extracted once from
its type declarations so the tests can check them without a network.

    npm pack stripe@23.1.0 && tar xzf stripe-23.1.0.tgz   # 23.1.0 pins 2026-10-28.endive
    python -m tests.node_declarations package/ > tests/node_declarations.json

Writes, one line each, every interface reachable from ROOTS through its own namespace
(nested objects such as Invoice.StatusTransitions) or shared types (Address), but for
the hashes of MENUS, as its
fields, each `name[?] kind… [=value|…] [Interface…]`: `?` where stripe-node marks the
field optional (it may be left out); the JSON kinds its type admits (`null` where it
may be null; `any` where the type says nothing); the string values it lists, when it
lists a few; the interfaces its value may be an object of. `read()` turns that back
into {interface: {field: Declared}}.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import NamedTuple

# The objects Tally renders, by stripe-node's interface names.
ROOTS = (
    "ApiList",
    "ApiSearchResult",
    "Customer",
    "CustomerBalanceTransaction",
    "DeletedCustomer",
    "DeletedInvoice",
    "DeletedInvoiceItem",
    "DeletedWebhookEndpoint",
    "Event",
    "Invoice",
    "InvoiceItem",
    "InvoiceLineItem",
    "InvoicePayment",
    "PaymentIntent",
    "PaymentRecord",
    "WebhookEndpoint",
)
# Longer lists of values (event types) are left to the type.
MAX_VALUES = 40
# Menus of one hash per payment method, none of which Tally renders: their fields are
# written, the hashes' own interfaces are not (the tests say so if one is ever needed).
MENUS = ("PaymentMethodOptions", "PaymentMethodDetails", "NextAction")

_OPEN = re.compile(r"^(?:export )?(?:declare )?(interface|namespace) (\w+)(?:<[^>]*>)?[^{]*\{$")
_FIELD = re.compile(r"^(\w+)(\?)?: (.*?);?$")
_ALIAS = re.compile(r"^(?:export )?type (\w+) = (.*?);$")
_SCALARS = {
    "string": "string",
    "OtherString": "string",
    "Decimal": "string",  # a decimal string on the wire
    "number": "number",
    "boolean": "boolean",
    "true": "boolean",
    "false": "boolean",
    "null": "null",
    "Metadata": "object",
}


class Declared(NamedTuple):
    optional: bool
    kinds: frozenset[str]
    values: frozenset[str]
    refs: tuple[str, ...]


def _parse(text: str, types: dict[str, str], interfaces: dict[str, dict[str, str]]) -> None:
    """The interfaces (qualified name -> field -> (optional, raw type)) and type aliases
    (qualified name -> raw type) of one .d.ts file. A field whose type spans lines (an
    inline object) keeps its first line."""
    scope: list[tuple[str, str]] = []  # (kind, name) of each open brace, "" for others
    field_depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("/*", "*")):
            continue
        if field_depth:
            field_depth += line.count("{") - line.count("}")
            continue
        here = ".".join(name for _, name in scope)
        opened = _OPEN.match(line)
        if opened:
            scope.append((opened.group(1), opened.group(2)))
            if opened.group(1) == "interface":
                interfaces.setdefault(f"{here}.{opened.group(2)}".lstrip("."), {})
            continue
        field = _FIELD.match(line) if scope and scope[-1][0] == "interface" else None
        if field:
            name, optional, type_ = field.groups()
            interfaces[here][name + (optional or "")] = type_
            field_depth = type_.count("{") - type_.count("}")
            continue
        alias = _ALIAS.match(line) if not scope or scope[-1][0] == "namespace" else None
        if alias:
            types[f"{here}.{alias.group(1)}".lstrip(".")] = alias.group(2)
            continue
        balance = line.count("{") - line.count("}")
        for _ in range(balance):
            scope.append(("", ""))
        for _ in range(-balance):
            scope.pop()


def _members(type_: str) -> list[str]:
    """The members of a union, split at its top level only."""
    out, depth, start = [], 0, 0
    for i, char in enumerate(type_):
        depth += (char in "<{(") - (char in ">})")
        if char == "|" and depth == 0:
            out.append(type_[start:i].strip())
            start = i + 1
    out.append(type_[start:].strip())
    return [m for m in out if m]


def _resolve(name: str, scope: str, known: set[str] | dict[str, str]) -> str | None:
    """TypeScript's lookup of a type name from inside interface `scope`: its own
    namespace first, then each enclosing one, then the top level."""
    parts = scope.split(".")
    for depth in range(len(parts), -1, -1):
        candidate = ".".join([*parts[:depth], name])
        if candidate in known:
            return candidate
    return None


def _analyse(
    type_: str, scope: str, types: dict[str, str], interfaces: dict[str, dict[str, str]]
) -> tuple[set[str], set[str], list[str]]:
    """(JSON kinds, string values, interfaces) of a field's type."""
    kinds: set[str] = set()
    values: set[str] = set()
    refs: list[str] = []
    for member in _members(type_):
        generic = re.match(r"^(\w+)<(.*)>$", member)
        if member.startswith("'"):
            kinds.add("string")
            values.add(member.strip("'"))
        elif member in _SCALARS:
            kinds.add(_SCALARS[member])
            if member == "OtherString":
                values.add("*")
        elif member == "void":
            continue
        elif member.startswith("{"):
            kinds.add("object")
        elif generic and generic.group(1) == "Array":
            kinds.add("array")
            refs += _analyse(generic.group(2), scope, types, interfaces)[2]
        elif generic and generic.group(1) == "ApiList":
            kinds.add("object")
            refs += ["ApiList", *_analyse(generic.group(2), scope, types, interfaces)[2]]
        elif (target := _resolve(member, scope, interfaces)) is not None:
            kinds.add("object")
            refs.append(target)
        elif (alias := _resolve(member, scope, types)) is not None:
            more = _analyse(types[alias], alias, types, interfaces)
            kinds |= more[0]
            values |= more[1]
            refs += more[2]
        else:
            kinds.add("any")
    return kinds, values, refs


def read(path: Path) -> dict[str, dict[str, Declared]]:
    out: dict[str, dict[str, Declared]] = {}
    for interface, fields in json.loads(path.read_text()).items():
        out[interface] = {}
        for field in fields:
            name, *rest = field.split(" ")
            kinds = frozenset(t for t in rest if t.islower())
            values = next((t[1:].split("|") for t in rest if t.startswith("=")), [])
            refs = tuple(t for t in rest if t[:1].isupper())
            out[interface][name.rstrip("?")] = Declared(
                name.endswith("?"), kinds, frozenset(values), refs
            )
    return out


def extract(package: Path) -> dict[str, list[str]]:
    types: dict[str, str] = {}
    interfaces: dict[str, dict[str, str]] = {}
    esm = package / "esm"
    for path in [esm / "lib.d.ts", esm / "shared.d.ts", *sorted(esm.glob("resources/*.d.ts"))]:
        _parse(path.read_text(), types, interfaces)
    # The event's fields are declared on EventBase, its nested types in namespace Event.
    interfaces["Event"] = interfaces.pop("EventBase")
    out: dict[str, list[str]] = {}
    todo = list(ROOTS)
    while todo:
        interface = todo.pop()
        if interface in out:
            continue
        fields = out[interface] = []
        for field, type_ in sorted(interfaces[interface].items()):
            kinds, values, found = _analyse(type_, interface, types, interfaces)
            # Follow an object's own nested types and shared ones, not other
            # resources (an expandable field's object is a root, or an id).
            refs = sorted(
                {
                    ref
                    for ref in found
                    if ref in ROOTS
                    or ref.startswith(interface.split(".")[0] + ".")
                    or ("." not in ref and "object" not in interfaces[ref])
                }
            )
            if interface.rsplit(".", 1)[-1] not in MENUS:
                todo += refs
            words = [field, *sorted(kinds)]
            if values - {"*"} and len(values) <= MAX_VALUES and kinds - {"null"} == {"string"}:
                words.append("=" + "|".join(sorted(values - {"*"})))
            fields.append(" ".join(words + refs))
    return dict(sorted(out.items()))


if __name__ == "__main__":
    lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in extract(Path(sys.argv[1])).items()]
    sys.stdout.write("{\n" + ",\n".join(lines) + "\n}\n")
