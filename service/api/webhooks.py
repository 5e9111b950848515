"""Placeholder: routes arrive with their issue."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)
