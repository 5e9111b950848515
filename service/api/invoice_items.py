"""Placeholder: routes arrive with their issue."""

from flask import Blueprint

bp = Blueprint("invoice_items", __name__)
