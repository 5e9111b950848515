"""Tier unit: no database, no Redis, no network: pure functions (the signature scheme,
the benchmarks' and the chaos run's own logic) and the repository itself (docs,
dependency pins, deploy files)."""
