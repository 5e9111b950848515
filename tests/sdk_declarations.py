"""What the stripe SDKs declare, beside what Tally answers: the seed example's fields
the pinned API version dropped, and the fields stripe-python declares as always there."""

from __future__ import annotations

import typing

# Fields of the seed's example that the pinned version no longer has: the invoice's
# `transfer_data` went in basil (stripe-node 18.0.0's changelog: "Remove support for
# ... `transfer_data` on `Invoice`"); `redaction` is a public-preview field
# (2026-06-24.preview) that neither SDK of 2026-10-28.endive declares.
SEED_FIELDS_GONE = {"transfer_data", "redaction"}


def always_present(cls: type) -> set[str]:
    """Fields a stripe-python class declares without Optional (nullable, or left out)."""
    return {
        name
        for name, annotation in cls.__annotations__.items()
        if typing.get_origin(annotation) is not typing.ClassVar
        and type(None) not in typing.get_args(annotation)
    }
