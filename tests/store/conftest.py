"""Tier store: the ledger and its database, in process on real PostgreSQL: operations
and store functions called directly (objects set up through the API where that is
shorter), locks and concurrency, property models of the ledger, and migrations."""
