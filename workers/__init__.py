"""Celery entry point: `celery -A workers worker` (or `-A workers.app`) finds `app` here."""

from workers.app import app

__all__ = ["app"]
