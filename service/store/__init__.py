"""SQL, and only SQL: functions over a psycopg connection that never commit.

Lock order, always: inbound event -> payment intent -> invoice -> invoice payment.
"""
