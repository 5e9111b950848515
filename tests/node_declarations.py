"""The fields stripe-node declares for the objects Tally renders, extracted once from
its type declarations so the tests can check them without a network.

    npm pack stripe@23.1.0 && tar xzf stripe-23.1.0.tgz   # 23.1.0 pins 2026-10-28.endive
    python -m tests.node_declarations package/ > tests/node_declarations.json

Writes, one line each, every interface reachable from ROOTS through its own namespace
(nested objects such as Invoice.StatusTransitions) or shared types (Address), as its
fields, each `name[?][ null][ Interface…]`: `?` where stripe-node marks the field
optional (it may be left out), `null` where its type admits null, then the
interfaces its value may be an object of. `read()` turns that back into
{interface: {field: (optional, nullable, refs)}}.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

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

_OPEN = re.compile(r"^(?:export )?(?:declare )?(interface|namespace) (\w+)(?:<[^>]*>)?[^{]*\{$")
_FIELD = re.compile(r"^(\w+)(\?)?: (.*)$")
_NAME = re.compile(r"[A-Z]\w*(?:\.[A-Z]\w*)*")


def _parse(text: str, into: dict[str, dict[str, tuple[bool, bool, str]]]) -> None:
    """Every interface of one .d.ts file: qualified name -> field -> (optional,
    nullable, raw type). Fields whose type spans lines keep their first line."""
    scope: list[tuple[str, str]] = []  # (kind, name) of each open brace, "" for others
    field_depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("/*", "*")):
            continue
        if field_depth:
            field_depth += line.count("{") - line.count("}")
            continue
        opened = _OPEN.match(line)
        if opened:
            scope.append((opened.group(1), opened.group(2)))
            if opened.group(1) == "interface":
                into.setdefault(".".join(name for _, name in scope), {})
            continue
        field = _FIELD.match(line) if scope and scope[-1][0] == "interface" else None
        if field:
            name, optional, type_ = field.groups()
            into[".".join(n for _, n in scope)][name] = (
                bool(optional),
                bool(re.search(r"\|\s*null\b|\bnull\s*\|", type_)),
                type_,
            )
            field_depth = type_.count("{") - type_.count("}")
            continue
        balance = line.count("{") - line.count("}")
        for _ in range(balance):
            scope.append(("", ""))
        for _ in range(-balance):
            scope.pop()


def _resolve(name: str, scope: str, known: set[str]) -> str | None:
    """TypeScript's lookup of a type name from inside interface `scope`: its own
    namespace first, then each enclosing one, then the top level."""
    parts = scope.split(".")
    for depth in range(len(parts), -1, -1):
        candidate = ".".join([*parts[:depth], name])
        if candidate in known:
            return candidate
    return None


def read(path: Path) -> dict[str, dict[str, tuple[bool, bool, list[str]]]]:
    out = {}
    for interface, fields in json.loads(path.read_text()).items():
        out[interface] = {}
        for field in fields:
            name, *rest = field.split(" ")
            optional = name.endswith("?")
            nullable = rest[:1] == ["null"]
            out[interface][name.rstrip("?")] = (optional, nullable, rest[nullable:])
    return out


def extract(package: Path) -> dict[str, list[str]]:
    interfaces: dict[str, dict[str, tuple[bool, bool, str]]] = {}
    esm = package / "esm"
    for path in [esm / "lib.d.ts", esm / "shared.d.ts", *sorted(esm.glob("resources/*.d.ts"))]:
        _parse(path.read_text(), interfaces)
    # The event's fields are declared on EventBase, its nested types in namespace Event.
    interfaces["Event"] = interfaces.pop("EventBase")
    known = set(interfaces)
    out: dict[str, list[str]] = {}
    todo = list(ROOTS)
    while todo:
        interface = todo.pop()
        if interface in out:
            continue
        fields = out[interface] = []
        for field, (optional, nullable, type_) in sorted(interfaces[interface].items()):
            refs = []
            for name in _NAME.findall(type_):
                target = _resolve(name, interface, known)
                if target is None:
                    continue
                # Follow an object's own nested types and shared ones, not other
                # resources (an expandable field's object is a root or an id).
                if (
                    target in ROOTS
                    or target.startswith(interface.split(".")[0] + ".")
                    or ("." not in target and not interfaces[target].get("object"))
                ):
                    refs.append(target)
                    todo.append(target)
            flags = ("?" if optional else "") + (" null" if nullable else "")
            fields.append(" ".join([field + flags, *sorted(set(refs))]))
    return dict(sorted(out.items()))


if __name__ == "__main__":
    lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in extract(Path(sys.argv[1])).items()]
    sys.stdout.write("{\n" + ",\n".join(lines) + "\n}\n")
