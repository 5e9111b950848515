"""Tier pipeline: webhooks in, events out (intake, the drain, crediting, the sweep,
publishing, the stream, deliveries): in process where a function is the subject,
and through a real Celery worker process (tests/pipeline_support.py; marked
`processes`) for the pipeline end to end, as the Procfile runs it."""
