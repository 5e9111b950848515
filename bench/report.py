"""The benchmark's one table: each figure beside the ceiling measured in the same run
(or, where no ceiling exists, its target), the ratio between them, and pass/miss.

Pure functions over plain data, so the formatting and the verdicts are unit-tested
(tests/test_bench_report.py) without running anything; `figures` lists the rows of
`python -m bench`'s table from its results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.steady_figures import CPU_ROLES, KNEE_P99_MS


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


# -- the figures of `python -m bench` ----------------------------------------------------


def steady_rows(e2e: dict[str, Any], reference: dict[str, Any]) -> list[Figure]:
    """bench/steady.py's rows: each fraction's latencies, longest silence and CPU per
    webhook (Tally's processes and PostgreSQL) beside the reference's per request."""
    ref_cpu = sum(reference["cpu_ms"].get(x, 0.0) for x in CPU_ROLES)
    rows = [
        Figure(
            "steady_knee",
            f"knee: highest fraction of the reference's {e2e['reference_rps']:.0f}/s kept up,"
            f" delivered p99 ≤ {KNEE_P99_MS:.0f} ms",
            e2e["knee"] or 0.0,
            "x",
            target=Target(0.25, True),
        )
    ]
    for row in e2e["rows"]:
        f = row["fraction"]
        name = f"{f:g}x = {row['rate']:.0f}/s" + ("" if row["kept_up"] else ", fell behind")
        first = f == e2e["rows"][0]["fraction"]
        for what in ("committed", "delivered"):
            for p in ("p50", "p99", "max"):
                target = (
                    Target(100, False) if first and what == "delivered" and p == "p99" else None
                )
                rows.append(
                    Figure(
                        f"steady_{f}_{what}_{p}",
                        f"webhook -> invoice.paid {what} at {name} {p}",
                        row[what][p],
                        "ms",
                        target=target,
                    )
                )
        rows.append(
            Figure(
                f"steady_{f}_silence",
                f"longest silence at {name}",
                row["longest_silence_s"],
                "s",
                target=Target(0.5, False) if first else None,
            )
        )
        rows.append(
            Figure(
                f"steady_{f}_cpu",
                f"CPU per webhook at {name} (Tally + PostgreSQL)",
                sum(row["cpu_ms"].get(x, 0.0) for x in CPU_ROLES),
                "ms",
                ref_cpu,
                "reference",
                Target(2.5, False, of_ceiling=True),
            )
        )
    return rows


def figures(r: dict[str, Any], connections: int) -> list[Figure]:
    """The table's rows from a run's results (bench/__main__.py)."""
    intake, attach, api = r["intake"], r["attach"], r["api_to_stream"]
    web, ref, tally, hello = intake["web"], intake["reference"], attach["tally"], attach["hello"]
    rss = {role: kb / 1024 for role, kb in r["rss"]["process_peak_kb"].items()}
    conns = f"({connections} conns)"
    rows = [
        Figure("intake_rps", f"intake req/s {conns}", web["rps"], "/s", ref["rps"], "reference",
               Target(0.8, True, of_ceiling=True)),
        Figure("intake_p99", "intake p99", web["p99"], "ms", ref["p99"], "reference",
               Target(30, False)),
        Figure("crediting", "backlog crediting", r["backlog"]["credits_per_s"], "/s",
               r["pgbench"]["credits_per_s"], "pgbench", Target(1000, True)),
        Figure("attach_rps", f"attach req/s {conns}", tally["rps"], "/s", hello["rps"], "hello",
               Target(500, True)),
        Figure("attach_p99", "attach p99", tally["p99"], "ms", hello["p99"], "hello",
               Target(40, False)),
        *steady_rows(r["steady"], r["steady_reference"]),
        Figure("api_stream_p50", "API -> stream p50", api["stream"]["p50"], "ms",
               target=Target(20, False)),
        Figure("api_stream_p99", "API -> stream p99", api["stream"]["p99"], "ms",
               target=Target(100, False)),
        Figure("rss_web", "peak RSS web (largest process)", rss["web"], "MB",
               target=Target(120, False)),
        Figure("rss_worker", "peak RSS worker (largest process)", rss["worker"], "MB",
               target=Target(150, False)),
        Figure("rss_deliveries", "peak RSS deliveries", rss["deliveries"], "MB"),
    ]  # fmt: skip
    return rows
