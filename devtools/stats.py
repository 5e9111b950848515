"""Latency figures: one percentile formula for the tests, the benchmarks and the chaos run."""

from __future__ import annotations


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of `values`; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n·p/100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


def summary(values: list[float]) -> dict[str, float]:
    """n, p50, p90, p99 and max of `values`."""
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }
