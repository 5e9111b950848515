"""Objects in Stripe's shape, rendered from store rows with marshmallow schemas.

Used by the API for responses and by operations for event snapshots.
"""
