"""SQL, and only SQL: functions over a psycopg connection that never commit.

Lock order, always: inbound event -> payment intent -> invoice -> invoice payment ->
customer. The customer row (its balance) comes last: finalize, void and an overpaying
credit hold the invoice when they move it, and nothing that holds it waits for an invoice.
"""
