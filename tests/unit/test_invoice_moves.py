"""The invoice's moves as records (service.domain.invoices): each move's statuses and
refusals, word for word, without a database."""

from __future__ import annotations

import pytest

from service.domain import invoices as rules
from service.errors import PaymentStateConflict

MOVES = (rules.FINALIZE, rules.VOID, rules.MARK_UNCOLLECTIBLE, rules.PAY, rules.DELETE)


@pytest.mark.parametrize("move", MOVES, ids=lambda m: m.name)
@pytest.mark.parametrize("status", rules.STATUSES)
def test_a_move_starts_only_from_its_statuses(move, status):
    # given a move and an invoice's status
    # when the move is checked
    if status in move.from_statuses:
        move.check(status)
        return
    with pytest.raises(PaymentStateConflict) as refused:
        move.check(status)
    # then it is refused with Stripe's code
    assert refused.value.code == "invoice_not_editable"


@pytest.mark.parametrize(
    ("move", "status", "message"),
    [
        (
            rules.FINALIZE,
            "open",
            "This invoice is already finalized; only a draft invoice can be finalized.",
        ),
        (
            rules.FINALIZE,
            "void",
            "This invoice is already finalized; only a draft invoice can be finalized.",
        ),
        (rules.PAY, "paid", "This invoice is already paid."),
        (
            rules.PAY,
            "draft",
            "You can only pay an invoice whose status is open or uncollectible; "
            "this invoice is draft.",
        ),
        (
            rules.MARK_UNCOLLECTIBLE,
            "paid",
            "You can only mark as uncollectible an invoice whose status is open; "
            "this invoice is paid.",
        ),
        (
            rules.VOID,
            "draft",
            "You can only void an invoice whose status is open or uncollectible; "
            "this invoice is draft.",
        ),
        (
            rules.DELETE,
            "open",
            "You can only delete an invoice whose status is draft; this invoice is open.",
        ),
    ],
)
def test_a_refusal_says_what_the_move_allows(move, status, message):
    # given a move its invoice's status forbids
    # when it is checked, then the refusal says why, in the API's words
    with pytest.raises(PaymentStateConflict, match="^" + message.replace(".", r"\.") + "$"):
        move.check(status)


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (rules.VOID, "Invoice in_1 has open or paid invoice payments, so you cannot void it."),
        (
            rules.MARK_UNCOLLECTIBLE,
            "Invoice in_1 has open invoice payments, so you cannot mark as uncollectible it.",
        ),
    ],
)
def test_blocking_payments_refuse_the_move(move, message):
    # given an invoice with payments that block the move
    # when the move is checked against them
    with pytest.raises(PaymentStateConflict) as refused:
        move.check_payments("in_1", blocked=True)
    # then it is refused, naming them; without them it is not
    assert (refused.value.message, refused.value.code) == (message, "invoice_payment_in_progress")
    move.check_payments("in_1", blocked=False)


def test_only_void_and_mark_uncollectible_are_blocked_by_payments():
    assert {m.name for m in MOVES if m.blocking_payments} == {"void", "mark_uncollectible"}
