"""Placeholder: routes arrive with their issue."""

from flask import Blueprint

bp = Blueprint("invoice_payments", __name__)
