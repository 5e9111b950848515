"""The benchmark's one table: each figure beside the ceiling measured in the same run
(or, where no ceiling exists, its target), the ratio between them, and pass/miss.

Pure functions over plain data, so the formatting and the verdicts are unit-tested
(tests/test_bench_report.py) without running anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """`value` must be at least (`at_least`) or at most the bound; `of_ceiling` makes the
    bound a multiple of the ceiling (e.g. ≥ 0.8x the reference) rather than absolute."""

    bound: float
    at_least: bool
    of_ceiling: bool = False

    def met(self, value: float, ceiling: float | None) -> bool:
        if self.of_ceiling:
            if not ceiling:
                return False
            value = value / ceiling
        return value >= self.bound if self.at_least else value <= self.bound

    def describe(self, unit: str) -> str:
        sign = "≥" if self.at_least else "≤"
        if self.of_ceiling:
            return f"{sign} {self.bound:g}x ceiling"
        return f"{sign} {_number(self.bound)}{_suffix(unit)}"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float
    unit: str
    ceiling: float | None = None
    ceiling_label: str = ""
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        """value ÷ ceiling when a ceiling was measured, else value ÷ target bound."""
        if self.ceiling:
            return self.value / self.ceiling
        if self.target and not self.target.of_ceiling and self.target.bound:
            return self.value / self.target.bound
        return None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "pass" if self.target.met(self.value, self.ceiling) else "MISS"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = (
            None
            if self.target is None
            else {**asdict(self.target), "text": self.target.describe(self.unit)}
        )
        out["ratio"] = self.ratio
        out["ratio_of"] = "ceiling" if self.ceiling else ("target" if self.ratio else None)
        out["verdict"] = self.verdict
        return out


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _suffix(unit: str) -> str:
    return unit if unit.startswith("/") else f" {unit}"


def format_value(value: float, unit: str) -> str:
    return f"{_number(value)}{_suffix(unit)}"


def table(figures: list[Figure]) -> str:
    """One plain-text table (also valid Markdown)."""
    header = ("figure", "measured", "ceiling (same run)", "ratio", "target", "")
    rows = [header]
    for f in figures:
        ceiling = (
            f"{format_value(f.ceiling, f.unit)} {f.ceiling_label}".strip() if f.ceiling else "-"
        )
        ratio = f.ratio
        ratio_text = (
            "-" if ratio is None else f"{ratio:.2f}x " + ("ceiling" if f.ceiling else "target")
        )
        target = f.target.describe(f.unit) if f.target else "-"
        rows.append(
            (f.label, format_value(f.value, f.unit), ceiling, ratio_text, target, f.verdict)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n·p/100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]
