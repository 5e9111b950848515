"""Placeholder: routes arrive with their issue."""

from flask import Blueprint

bp = Blueprint("payment_intents", __name__)
