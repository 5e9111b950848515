"""Pure rules of the ledger: no database, web or queue code in here."""
