"""SQL, and only SQL: functions over a psycopg connection that never commit.

Lock order, always: inbound event -> payment intent -> invoice -> invoice payment ->
customer. The customer row (its balance) comes last: finalize, void and an overpaying
credit hold the invoice when they move it, and nothing that holds it waits for an invoice.

Each function runs literal, parameterised SQL: a module's statements, or their shared
parts (a column list, a SELECT by id that get_for_update locks), are constants of that
module, composed only from constants (pages.py composes the one query that names its
table, from a closed list; bench/crediting.py runs the crediting statements as they
are here). A statement that must return exactly one row is read as
`(row,) = cur.execute(...).fetchall()`, which raises, unlike an assert, under -O too.
"""
