"""Placeholder: routes arrive with their issue."""

from flask import Blueprint

bp = Blueprint("webhook_endpoints", __name__)
