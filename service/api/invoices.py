"""Placeholder: routes arrive with their issue."""

from flask import Blueprint

bp = Blueprint("invoices", __name__)
