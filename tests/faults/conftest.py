"""Tier faults: real servers and processes made to fail: PostgreSQL restarted, Redis
gone, a worker SIGKILLed by its event, slow clients holding the web process."""
