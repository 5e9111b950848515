"""Tally: a Stripe-compatible invoice-payment service."""
