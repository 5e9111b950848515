"""Prefixed random ids, as Stripe makes them."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits

CUSTOMER = "cus"
BALANCE_TRANSACTION = "cbtxn"
INVOICE_ITEM = "ii"
INVOICE_LINE = "il"
INVOICE = "in"
PAYMENT_INTENT = "pi"
INVOICE_PAYMENT = "inpay"
PAYMENT_RECORD = "pr"
EVENT = "evt"
WEBHOOK_ENDPOINT = "we"
REQUEST = "req"
WEBHOOK_SECRET = "whsec"  # noqa: S105 -- the prefix of a signing secret's id, not a secret


def new_id(prefix: str, length: int = 24) -> str:
    """`prefix_` and `length` random base-62 characters (24 carry about 142 bits)."""
    number = int.from_bytes(secrets.token_bytes(length))
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return prefix + "_" + "".join(chars)


def has_prefix(value: str, prefix: str) -> bool:
    """True when `value` looks like an id of this kind (prefix, then 1 to 64 id chars)."""
    head, sep, tail = value.partition("_")
    return bool(sep) and head == prefix and 0 < len(tail) <= 64 and tail.isalnum()
