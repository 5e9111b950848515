"""A stateful property test of the ledger: random sequences of attaches, successes
(duplicated and out of order), cancels, voids, uncollectibles, out-of-band payments and
payment records, over several invoices in two currencies (some with negative items, a
credit), and balance adjustments in either currency, run through the real API and
the worker's crediting code on PostgreSQL, and compared after every step with a plain
in-memory model of what Stripe's invoice arithmetic says must be true."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from service.store.reconciliation import breaches
from tests import factories

CURRENCIES = ("usd", "eur")


@dataclasses.dataclass
class ModelPayment:
    id: str  # the pi_ or pr_ it carries
    amount: int
    status: str = "open"  # open | paid | canceled


@dataclasses.dataclass
class ModelBalance:
    """The customer's credit balance in each currency (negative = credit), Stripe's
    invoice_credit_balance; `balance` is the one in the default currency, that of the
    first transaction."""

    amounts: dict[str, int] = dataclasses.field(default_factory=dict)
    currency: str | None = None

    def move(self, currency: str, amount: int) -> None:
        """One balance transaction of `amount` (none is written for 0)."""
        if amount:
            self.amounts[currency] = self.amounts.get(currency, 0) + amount
            self.currency = self.currency or currency

    def of(self, currency: str) -> int:
        return self.amounts.get(currency, 0)


@dataclasses.dataclass
class ModelInvoice:
    id: str
    currency: str
    due: int
    balance: ModelBalance
    applied: int = 0  # starting_balance - ending_balance: what finalize took from it
    status: str = "open"
    paid: int = 0
    payments: dict[str, ModelPayment] = dataclasses.field(default_factory=dict)
    paid_events: int = 0
    overpaid_events: int = 0

    @property
    def remaining(self) -> int:
        return max(self.due - self.paid, 0)

    @property
    def overpaid(self) -> int:
        return max(self.paid - self.due, 0)

    def has(self, *statuses: str) -> bool:
        return any(p.status in statuses for p in self.payments.values())

    def credit(self, payment: ModelPayment) -> None:
        """What one credit does (DESIGN.md, "The ledger" and "Outgoing events")."""
        payment.status = "paid"
        overpaid_before = self.overpaid
        self.paid += payment.amount
        # the overpaid cents credit the customer, in the invoice's currency
        self.balance.move(self.currency, -(self.overpaid - overpaid_before))
        if self.status in ("open", "uncollectible") and self.remaining == 0:
            self.status = "paid"
            self.paid_events += 1
            self.overpaid_events += self.overpaid > 0


def run_ledger_model(api: Any, db: Any, dsn: str, max_examples: int) -> None:
    class Ledger(RuleBasedStateMachine):
        invoices = Bundle("invoices")
        open_intents = Bundle("open_intents")
        succeeded_intents = Bundle("succeeded_intents")
        initiated_records = Bundle("initiated_records")
        ended_records = Bundle("ended_records")

        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, ModelInvoice] = {}
            self.pis: dict[str, tuple[dict[str, Any], ModelInvoice, ModelPayment]] = {}
            self.records: dict[str, tuple[ModelInvoice, ModelPayment]] = {}
            # Each example bills a customer of its own, with a balance of its own.
            self.cus = factories.customer(api)
            self.balance = ModelBalance()

        def customer(self) -> dict[str, Any]:
            return self.cus

        def _finalized(self, invoice: dict[str, Any], total: int) -> ModelInvoice:
            """The model of an invoice of `total` just finalized: it applied the balance
            in its currency only (Stripe's rules); a credit beyond its total (a negative
            total too) stays on the balance."""
            currency = invoice["currency"]
            starting = self.balance.of(currency)
            due = max(total + starting, 0)
            ending = min(total + starting, 0)
            inv = ModelInvoice(invoice["id"], currency, due, self.balance, starting - ending)
            self.balance.move(currency, ending - starting)
            if due == 0:  # nothing due: paid at finalize
                inv.status, inv.paid_events = "paid", 1
            self.model[inv.id] = inv
            assert (invoice["total"], invoice["amount_due"], invoice["ending_balance"]) == (
                total, due, ending), inv  # fmt: skip
            return inv

        @rule(target=invoices, currency=st.sampled_from(CURRENCIES),
              amount=st.integers(100, 5000))  # fmt: skip
        def create_invoice(self, currency: str, amount: int) -> ModelInvoice:
            invoice = factories.open_invoice(api, amount, currency, cus=self.customer())
            return self._finalized(invoice, amount)

        def _attach(self, inv: ModelInvoice, data: dict[str, str]) -> Any:
            return api.post(f"/v1/invoices/{inv.id}/attach_payment", data)

        def _new_pi(self, inv: ModelInvoice, amount: int) -> dict[str, Any]:
            owner = {"currency": inv.currency, "customer": self.customer()["id"]}
            return factories.payment_intent(api, owner, amount)

        def _new_record(self, inv: ModelInvoice, amount: int, **outcome: str) -> dict[str, Any]:
            """A payment record for the invoice's customer, reported (with `outcome`)."""
            record = api.post("/v1/payment_records/report_payment", {
                "amount_requested[value]": amount,
                "amount_requested[currency]": inv.currency,
                "customer_details[customer]": self.customer()["id"],
                "initiated_at": 1_700_000_000,
                **outcome,
            })  # fmt: skip
            assert record.status_code == 200, record.json
            return record.json

        @rule(target=open_intents, inv=invoices, share=st.integers(1, 100))
        def attach_payment_intent(self, inv: ModelInvoice, share: int) -> Any:
            amount = max(inv.remaining * share // 100, 1)
            pi = self._new_pi(inv, amount)
            response = self._attach(inv, {"payment_intent": pi["id"]})
            if inv.status not in ("open", "uncollectible") or amount > inv.remaining:
                assert response.status_code == 400, response.json
                return multiple()  # nothing to remember
            assert response.status_code == 200, response.json
            payment = ModelPayment(pi["id"], amount)
            inv.payments[pi["id"]] = payment
            self.pis[pi["id"]] = (pi, inv, payment)
            return pi["id"]

        @rule(target=succeeded_intents, pi_id=consumes(open_intents))
        def succeed(self, pi_id: str) -> str:
            pi, inv, payment = self.pis[pi_id]
            factories.settle(dsn, pi, "succeeded")
            if payment.status == "open":
                inv.credit(payment)
            return pi_id

        @rule(pi_id=succeeded_intents, late=st.sampled_from(["succeeded", "processing"]))
        def redeliver(self, pi_id: str, late: str) -> None:
            """A duplicate success, or a `processing` arriving after it: nothing moves."""
            factories.settle(dsn, self.pis[pi_id][0], late)

        @rule(pi_id=consumes(open_intents))
        def cancel(self, pi_id: str) -> None:
            _, _, payment = self.pis[pi_id]
            response = api.post(f"/v1/payment_intents/{pi_id}/cancel")
            assert response.status_code == 200, response.json
            if payment.status == "open":
                payment.status = "canceled"

        @rule(inv=invoices, share=st.integers(1, 100))
        def succeed_then_attach(self, inv: ModelInvoice, share: int) -> None:
            """The success webhook came before the attach: attach credits at once."""
            amount = max(inv.remaining * share // 100, 1)
            pi = self._new_pi(inv, amount)
            factories.settle(dsn, pi, "succeeded")
            response = self._attach(inv, {"payment_intent": pi["id"]})
            if inv.status not in ("open", "uncollectible") or amount > inv.remaining:
                assert response.status_code == 400, response.json
                return
            assert response.status_code == 200, response.json
            payment = ModelPayment(pi["id"], amount)
            inv.payments[pi["id"]] = payment
            inv.credit(payment)

        @rule(inv=invoices, share=st.integers(1, 100))
        def report_and_attach_record(self, inv: ModelInvoice, share: int) -> None:
            amount = max(inv.remaining * share // 100, 1)
            record_id = self._new_record(inv, amount, outcome="guaranteed")["id"]
            response = self._attach(inv, {"payment_record": record_id})
            if inv.status not in ("open", "uncollectible") or amount > inv.remaining:
                assert response.status_code == 400, response.json
                return
            assert response.status_code == 200, response.json
            payment = ModelPayment(record_id, amount)
            inv.payments[record_id] = payment
            inv.credit(payment)

        # -- payment records that clear later: initiated, attached, then ended --------

        @rule(target=initiated_records, inv=invoices, share=st.integers(1, 100))
        def attach_initiated_record(self, inv: ModelInvoice, share: int) -> Any:
            """A record reported without an outcome waits, open, once attached."""
            amount = max(inv.remaining * share // 100, 1)
            record = self._new_record(inv, amount)
            assert record["amount_guaranteed"]["value"] == 0, record
            response = self._attach(inv, {"payment_record": record["id"]})
            if inv.status not in ("open", "uncollectible") or amount > inv.remaining:
                assert response.status_code == 400, response.json
                return multiple()
            assert response.status_code == 200, response.json
            payment = ModelPayment(record["id"], amount)
            inv.payments[record["id"]] = payment
            self.records[record["id"]] = (inv, payment)
            return record["id"]

        # Guaranteed twice as often: it is the outcome that moves money.
        @rule(
            target=ended_records,
            record_id=consumes(initiated_records),
            outcome=st.sampled_from(["guaranteed", "guaranteed", "failed", "canceled"]),
        )
        def end_record_attempt(self, record_id: str, outcome: str) -> str:
            """Guaranteed credits the record's payment like a success; failed or
            canceled cancels it."""
            inv, payment = self.records[record_id]
            response = api.post(
                f"/v1/payment_records/{record_id}/report_payment_attempt_{outcome}",
                {f"{outcome}_at": 1_700_000_100},
            )
            assert response.status_code == 200, response.json
            if outcome == "guaranteed":
                inv.credit(payment)
            else:
                payment.status = "canceled"
            return record_id

        @rule(record_id=ended_records,
              outcome=st.sampled_from(["guaranteed", "failed", "canceled"]))  # fmt: skip
        def report_an_ended_record_again(self, record_id: str, outcome: str) -> None:
            """An ended attempt takes no second outcome: refused, nothing moves."""
            response = api.post(
                f"/v1/payment_records/{record_id}/report_payment_attempt_{outcome}",
                {f"{outcome}_at": 1_700_000_200},
            )
            assert response.status_code == 400, response.json
            assert response.json["error"]["param"] == f"{outcome}_at", response.json

        @rule(inv=invoices)
        def void(self, inv: ModelInvoice) -> None:
            response = api.post(f"/v1/invoices/{inv.id}/void")
            if inv.status in ("open", "uncollectible") and not inv.has("open", "paid"):
                assert response.status_code == 200, response.json
                inv.status = "void"
                inv.balance.move(inv.currency, inv.applied)  # what finalize took goes back
            else:
                assert response.status_code == 400, response.json

        @rule(inv=invoices)
        def mark_uncollectible(self, inv: ModelInvoice) -> None:
            response = api.post(f"/v1/invoices/{inv.id}/mark_uncollectible")
            if inv.status == "open" and not inv.has("open"):
                assert response.status_code == 200, response.json
                inv.status = "uncollectible"
            else:
                assert response.status_code == 400, response.json

        @rule(inv=invoices)
        def pay_out_of_band(self, inv: ModelInvoice) -> None:
            response = api.post(f"/v1/invoices/{inv.id}/pay", {"paid_out_of_band": "true"})
            if inv.status in ("open", "uncollectible") and not inv.has("open"):
                assert response.status_code == 200, response.json
                # An out-of-band payment record for what remains (Stripe basil).
                inv.payments[f"oob-{inv.id}"] = ModelPayment("oob", inv.remaining)
                inv.credit(inv.payments[f"oob-{inv.id}"])
            else:
                assert response.status_code == 400, response.json

        # --- negative items and balances in every currency ---------------------------

        @rule(target=invoices, currency=st.sampled_from(CURRENCIES),
              charge=st.integers(0, 3000), credit=st.integers(1, 5000))  # fmt: skip
        def create_invoice_with_a_credit(
            self, currency: str, charge: int, credit: int
        ) -> ModelInvoice:
            """An invoice of a charge and a negative item; its total may be negative."""
            cus = self.customer()["id"]
            for amount in (charge, -credit):
                item = api.post(
                    "/v1/invoiceitems",
                    {"customer": cus, "amount": amount, "currency": currency},
                )
                assert item.status_code == 200, item.json
            draft = api.post("/v1/invoices", {
                "customer": cus, "currency": currency,
                "pending_invoice_items_behavior": "include",
            })  # fmt: skip
            assert draft.status_code == 200, draft.json
            return self._finalized(factories.finalize(api, draft.json["id"]), charge - credit)

        @rule(currency=st.sampled_from(CURRENCIES),
              amount=st.integers(-3000, 3000).filter(bool))  # fmt: skip
        def adjust_balance(self, currency: str, amount: int) -> None:
            txn = factories.adjust(api, self.cus["id"], amount, currency)
            self.balance.move(currency, amount)
            assert txn["ending_balance"] == self.balance.of(currency), (txn, self.balance)

        # --------------------------------------------------------------------------------

        @invariant()
        def invoices_match_the_model(self) -> None:
            for inv in self.model.values():
                got = api.get(f"/v1/invoices/{inv.id}", {"expand[]": "payments"}).json
                assert (got["status"], got["amount_paid"], got["amount_remaining"],
                        got["amount_overpaid"]) == (inv.status, inv.paid, inv.remaining,
                                                    inv.overpaid), inv  # fmt: skip
                statuses = sorted(p["status"] for p in got["payments"]["data"])
                assert statuses == sorted(p.status for p in inv.payments.values()), inv

        @invariant()
        def the_customer_balance_matches_the_model(self) -> None:
            got = api.get(
                f"/v1/customers/{self.cus['id']}", {"expand[]": "invoice_credit_balance"}
            ).json
            default = self.balance.of(self.balance.currency) if self.balance.currency else 0
            assert (got["balance"], got["currency"]) == (default, self.balance.currency), (
                got, self.balance)  # fmt: skip
            assert got["invoice_credit_balance"] == self.balance.amounts, (got, self.balance)

        @invariant()
        def paid_and_overpaid_are_told_once(self) -> None:
            for inv in self.model.values():
                types = factories.invoice_events(db, inv.id)
                assert types.count("invoice.paid") == inv.paid_events <= 1, (inv, types)
                assert types.count("invoice.overpaid") == inv.overpaid_events <= 1, (inv, types)

        @invariant()
        def the_sweepers_invariants_hold(self) -> None:
            assert breaches(db) == []

    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=15,
            deadline=None,
            # No shrinking: against a real database it ran past five minutes; a failure
            # prints its whole (short) sequence of steps instead.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# About 30 s on an idle 2-core machine; several times that under load.
@pytest.mark.timeout(600)
def test_the_ledger_agrees_with_its_model(own_api, own_db, own_database):
    # A database of its own: the sweeper's checks see only what the model made.
    run_ledger_model(own_api, own_db, own_database, max_examples=30)
