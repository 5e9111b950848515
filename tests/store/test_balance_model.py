"""A stateful model of one customer's balance: random adjustments, finalizes (of negative
totals too), overpaying credits and voids, in usd and eur, against the real API and
database. After every step the ledger adds up in each currency: its balance = Σ its
transactions, and what the invoices took from it plus what remains of it = every credit
and debit ever made in it; `balance` is the default currency's."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from service.store import reconciliation
from tests import factories

CURRENCIES = st.sampled_from(["usd", "usd", "eur"])
AMOUNTS = st.integers(-3000, 3000).filter(bool)


class BalanceMachine(RuleBasedStateMachine):
    api: ClassVar[Any]
    db: ClassVar[Any]
    dsn: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[str, int] = {}  # currency -> balance (invoice_credit_balance)
        self.currency: str | None = None  # the default currency, set by the first move
        # currency -> Σ of every credit and debit: initial, adjustments, overpayments
        self.made: dict[str, int] = {}
        self.open: list[dict[str, Any]] = []

    def move(self, currency: str, amount: int, *, made: bool) -> None:
        self.balances[currency] = self.balances.get(currency, 0) + amount
        if made:
            self.made[currency] = self.made.get(currency, 0) + amount
        self.currency = self.currency or currency

    @initialize(balance=st.integers(-2000, 2000))
    def create_customer(self, balance: int) -> None:
        self.customer = factories.customer(self.api, balance=balance)
        if balance:
            self.move("usd", balance, made=True)

    @rule(amount=AMOUNTS, currency=CURRENCIES)
    def adjust(self, amount: int, currency: str) -> None:
        response = self.api.post(
            factories.balance_url(self.customer["id"]), {"amount": amount, "currency": currency}
        )
        assert response.status_code == 200, response.json
        self.move(currency, amount, made=True)
        assert response.json["ending_balance"] == self.balances[currency]

    @rule(total=st.integers(-3000, 3000), currency=CURRENCIES)
    def finalize(self, total: int, currency: str) -> None:
        draft = factories.draft_invoice(self.api, total, currency, cus=self.customer)
        invoice = factories.finalize(self.api, draft["id"])
        starting = self.balances.get(currency, 0)
        assert invoice["starting_balance"] == starting
        assert invoice["amount_due"] == max(total + starting, 0)
        assert invoice["ending_balance"] == min(total + starting, 0)
        assert invoice["status"] == ("paid" if invoice["amount_due"] == 0 else "open")
        if invoice["ending_balance"] != starting:
            self.move(currency, invoice["ending_balance"] - starting, made=False)
        if invoice["status"] == "open":
            self.open.append(invoice)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), extra=st.integers(1, 1000))
    def overpay(self, data: st.DataObject, extra: int) -> None:
        invoice = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        due = invoice["amount_remaining"]
        over = min(extra, due)
        intents = [factories.payment_intent(self.api, invoice, n) for n in (over, due)]
        for pi in intents:
            attached = self.api.post(
                f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
            )
            assert attached.status_code == 200, attached.json
        for pi in intents:
            factories.settle(self.dsn, pi)
        paid = self.api.get(f"/v1/invoices/{invoice['id']}").json
        assert (paid["status"], paid["amount_overpaid"]) == ("paid", over)
        self.move(invoice["currency"], -over, made=True)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        invoice = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        voided = self.api.post(f"/v1/invoices/{invoice['id']}/void")
        assert voided.status_code == 200, voided.json
        given_back = invoice["starting_balance"] - invoice["ending_balance"]
        if given_back:
            self.move(invoice["currency"], given_back, made=False)

    @invariant()
    def the_ledger_adds_up(self) -> None:
        customer_id = self.customer["id"]
        customer = self.api.get(
            f"/v1/customers/{customer_id}", {"expand[]": "invoice_credit_balance"}
        ).json
        default = self.balances.get(self.currency, 0) if self.currency else 0
        assert (customer["balance"], customer["currency"]) == (default, self.currency)
        assert customer["invoice_credit_balance"] == self.balances
        ledger = factories.balance_ledger(self.db, customer_id)
        for currency, balance in self.balances.items():
            mine = [t for t in ledger if t["currency"] == currency]
            assert sum(t["amount"] for t in mine) == balance
            made = sum(
                t["amount"]
                for t in mine
                if t["type"] in ("initial", "adjustment", "invoice_overpaid")
            )
            took = self.db.execute(
                "SELECT coalesce(sum(starting_balance - ending_balance), 0) AS took"
                " FROM invoices WHERE customer = %s AND currency = %s"
                " AND finalized_at IS NOT NULL AND status <> 'void'",
                (customer_id, currency),
            ).fetchone()["took"]
            assert took + balance == made == self.made.get(currency, 0)
        assert reconciliation.breaches(self.db) == []


@pytest.mark.timeout(600)  # hypothesis against a real database; slow under load
def test_the_balance_ledger_adds_up_whatever_happens(own_api, own_db, own_database):
    # A database of its own: the sweeper's checks see only what the machine made.
    BalanceMachine.api, BalanceMachine.db = own_api, own_db
    BalanceMachine.dsn = own_database
    run_state_machine_as_test(
        BalanceMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            database=None,
            # Each step goes through the API and PostgreSQL: shrinking would take minutes.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
