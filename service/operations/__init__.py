"""Use cases: each owns its transaction and writes its events in it."""
