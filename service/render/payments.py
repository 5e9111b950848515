"""PaymentIntents, payment records and invoice payments in Stripe's shape."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from service.render.compiled import compiled_dump


class PaymentIntentSchema(Schema):
    id = fields.String()
    object = fields.Constant("payment_intent")
    allowed_payment_method_types = fields.Constant(None)
    amount = fields.Integer()
    amount_capturable = fields.Constant(0)
    amount_details = fields.Constant[dict[str, Any]]({"tip": {}})
    amount_received = fields.Integer()
    application = fields.Constant(None)
    application_fee_amount = fields.Constant(None)
    automatic_payment_methods = fields.Constant(None)
    canceled_at = fields.Integer(allow_none=True)
    cancellation_reason = fields.String(allow_none=True)
    capture_method = fields.Constant("automatic")
    client_secret = fields.Constant(None)
    confirmation_method = fields.Constant("automatic")
    created = fields.Integer()
    currency = fields.String()
    customer = fields.String(allow_none=True)
    customer_account = fields.Constant(None)
    description = fields.String(allow_none=True)
    excluded_payment_method_types = fields.Constant(None)
    last_payment_error = fields.Constant(None)
    latest_charge = fields.Constant(None)
    livemode = fields.Boolean()
    managed_payments = fields.Constant(None)
    metadata = fields.Dict()
    next_action = fields.Constant(None)
    on_behalf_of = fields.Constant(None)
    payment_method = fields.Constant(None)
    payment_method_configuration_details = fields.Constant(None)
    payment_method_options = fields.Constant[dict[str, Any]]({})
    payment_method_types = fields.Constant(["card"])
    payment_record = fields.Constant(None)
    processing = fields.Constant(None)
    receipt_email = fields.Constant(None)
    review = fields.Constant(None)
    setup_future_usage = fields.Constant(None)
    shipping = fields.Constant(None)
    source = fields.Constant(None)
    statement_descriptor = fields.Constant(None)
    statement_descriptor_suffix = fields.Constant(None)
    status = fields.String()
    transfer_data = fields.Constant(None)
    transfer_group = fields.Constant(None)


class PaymentRecordSchema(Schema):
    """A payment record. Its amounts are its latest attempt's: an initiated one has
    guaranteed nothing yet (Stripe's example of a report without an outcome shows
    `amount_guaranteed.value: 0`). Its reference is `processor_details.custom.
    payment_reference` (the top-level `payment_reference` of basil's examples is gone
    from the SDKs of the pinned version)."""

    id = fields.String()
    object = fields.Constant("payment_record")
    amount = fields.Method("_requested")
    amount_authorized = fields.Method("_zero")
    amount_canceled = fields.Method("_canceled")
    amount_failed = fields.Method("_failed")
    amount_guaranteed = fields.Method("_guaranteed")
    amount_refunded = fields.Method("_refunded")
    amount_requested = fields.Method("_requested")
    application = fields.Constant(None)
    created = fields.Integer()
    customer_details = fields.Method("_customer_details")
    customer_presence = fields.Constant(None)
    description = fields.String(allow_none=True)
    latest_payment_attempt_record = fields.Constant(None)
    livemode = fields.Boolean()
    metadata = fields.Dict()
    payment_method_details = fields.Method("_payment_method_details")
    processor_details = fields.Method("_processor_details")
    reported_by = fields.Constant("self")
    shipping_details = fields.Constant(None)

    def _amount(self, row: dict[str, Any], value: int) -> dict[str, Any]:
        return {"currency": row["currency"], "value": value}

    def _requested(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._amount(row, row["amount"])

    def _zero(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._amount(row, 0)

    def _if_outcome(self, row: dict[str, Any], outcome: str) -> dict[str, Any]:
        return self._amount(row, row["amount"] if row["outcome"] == outcome else 0)

    def _guaranteed(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._if_outcome(row, "guaranteed")

    def _failed(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._if_outcome(row, "failed")

    def _canceled(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._if_outcome(row, "canceled")

    def _refunded(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._amount(row, row["amount_refunded"])

    def _customer_details(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["customer"] is None:
            return None
        return {"customer": row["customer"], "email": None, "name": None, "phone": None}

    def _payment_method_details(self, row: dict[str, Any]) -> dict[str, Any]:
        # No `custom` hash: Tally keeps no custom payment method type, and the SDKs
        # declare the hash may be left out but its display_name never null.
        return {"billing_details": None, "payment_method": None, "type": row["payment_method_type"]}

    def _processor_details(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"type": "custom", "custom": {"payment_reference": row["payment_reference"]}}


class InvoicePaymentSchema(Schema):
    id = fields.String()
    object = fields.Constant("invoice_payment")
    amount_paid = fields.Integer(allow_none=True)
    amount_requested = fields.Integer()
    created = fields.Integer()
    currency = fields.String()
    invoice = fields.String()
    is_default = fields.Constant(False)
    livemode = fields.Boolean()
    payment = fields.Method("_payment")
    status = fields.String()
    status_transitions = fields.Method("_status_transitions")

    def _payment(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["payment_intent"] is not None:
            return {"type": "payment_intent", "payment_intent": row["payment_intent"]}
        return {"type": "payment_record", "payment_record": row["payment_record"]}

    def _status_transitions(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"canceled_at": row["canceled_at"], "paid_at": row["paid_at"]}


render_payment_intent = compiled_dump(PaymentIntentSchema())
render_payment_record = compiled_dump(PaymentRecordSchema())
render_invoice_payment = compiled_dump(InvoicePaymentSchema())
