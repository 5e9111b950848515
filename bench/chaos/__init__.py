"""The chaos run: the real stack, as the Procfile runs it, under faults; then a verdict.

    .venv/bin/python -m bench.chaos [--invoices 300] [--webhooks 3000] [--threads 8]
        [--seconds 120] [--settle 120] [--short] [--seed N] [--keep-logs]

stack.py starts a private PostgreSQL and redis-server and every Procfile process;
traffic.py plays the business (API calls with Idempotency-Keys) and Stripe (signed
webhooks, duplicated, shuffled, retried); faults.py kills and restarts things
meanwhile; verdict.py checks the ledger, the events and the deliveries against what
the run knows it sent, and prints the table. Exit status 1 on any failed check.
"""
