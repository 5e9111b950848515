"""The steady-rate benchmark's figures (bench/steady.py), from the stamps of each
webhook's stages: per fraction latencies, silences, whether it kept up, the knee; its
tables and its plot. Pure functions over plain data (tests/test_bench_steady.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.common import log
from devtools.stats import percentile, summary

SILENCE_S = 1.0  # a gap between commits longer than this is reported
KNEE_P99_MS = 250.0
STAGES = ("sent", "stored", "claimed", "committed", "published", "taken", "posted")


def silences(times: Iterable[float], longer_than: float = 0.0) -> list[tuple[float, float]]:
    """(start, length) of each gap between consecutive `times` longer than `longer_than`,
    longest first."""
    ordered = sorted(times)
    gaps = [(a, b - a) for a, b in itertools.pairwise(ordered) if b - a > longer_than]
    return sorted(gaps, key=lambda gap: -gap[1])


def kept_up(
    sent: dict[str, float], delivered: dict[str, float], asked_rate: float, *, tail_s: float = 1.0
) -> bool:
    """Every webhook delivered, the sender reached 95% of `asked_rate`, and those sent in
    the last `tail_s` seconds were each delivered within `tail_s` of being sent."""
    if not sent or any(key not in delivered for key in sent):
        return False
    first, last = min(sent.values()), max(sent.values())
    if len(sent) > 1 and (len(sent) - 1) / max(last - first, 1e-9) < 0.95 * asked_rate:
        return False
    tail = [key for key, at in sent.items() if at >= last - tail_s]
    return all(delivered[key] - sent[key] <= tail_s for key in tail)


def knee(rows: list[dict[str, Any]], p99_ms: float = KNEE_P99_MS) -> float | None:
    """The highest fraction that kept up with delivered p99 at most `p99_ms`."""
    good = [r["fraction"] for r in rows if r["kept_up"] and r["delivered"]["p99"] <= p99_ms]
    return max(good, default=None)


def row_figures(fraction: float, rate: float, sender: dict[str, Any],
                stamps: dict[str, dict[str, float | None]]) -> dict[str, Any]:  # fmt: skip
    """One fraction's figures from each webhook's stage `stamps` (keyed by invoice)."""
    sent = {k: s["sent"] for k, s in stamps.items() if s["sent"] is not None}
    committed = {k: s["committed"] for k, s in stamps.items() if s["committed"] is not None}
    arrived = {k: s["posted"] for k, s in stamps.items() if s["posted"] is not None}
    keys = list(stamps)
    steps = {}
    for a, b in itertools.pairwise(STAGES):
        steps[f"{a}->{b}"] = summary(
            [(s[b] - s[a]) * 1000 for s in stamps.values() if s[a] is not None and s[b] is not None]
        )
    commit_times = [committed[k] for k in keys if k in committed]
    gaps = silences(commit_times, SILENCE_S)
    t0 = min(sent.values())
    longest = silences(commit_times)[:1]
    return {
        "fraction": fraction,
        "asked_rate": rate,
        "rate": sender["rps"],
        "sent": len(sent),
        "non_2xx": sum(n for s, n in sender["statuses"].items() if not str(s).startswith("2")),
        "committed": summary([(committed[k] - sent[k]) * 1000 for k in sent if k in committed]),
        "delivered": summary([(arrived[k] - sent[k]) * 1000 for k in sent if k in arrived]),
        "longest_silence_s": longest[0][1] if longest else float("nan"),
        "longest_silence": (
            {"at_s": longest[0][0] - t0, "stalled": _stalled(stamps, *longest[0])}
            if longest
            else None
        ),
        "silences": [
            {"at_s": at - t0, "length_s": length, "stalled": _stalled(stamps, at, length)}
            for at, length in gaps
        ],
        # Longest gap with nothing happening at each stage, over the whole fraction.
        "stage_silences_s": {
            stage: (silences([s[stage] for s in stamps.values() if s[stage]])[:1] or [(0, 0)])[0][1]
            for stage in STAGES
        },
        "kept_up": kept_up(sent, arrived, rate),
        # One batch, one transaction: its events share processed_at (its now()).
        "batches": len({s["claimed"] for s in stamps.values() if s["claimed"]}),
        "steps": steps,
        "series": [
            [round(s["sent"] - t0, 4)]
            + [round((s[x] - s["sent"]) * 1000, 2) if s[x] else None for x in STAGES[1:]]
            for s in sorted(stamps.values(), key=lambda s: s["sent"] or 0)
            if s["sent"]
        ],
    }


def _stalled(stamps: dict[str, dict[str, float | None]], at: float, length: float) -> dict:
    """For the webhooks committed just after a silence: how long each waited at each
    stage up to its commit (p50 ms), which says where the silence was spent."""
    after = [
        s for s in stamps.values()
        if s["committed"] and at + length - 0.001 <= s["committed"] <= at + length + 0.2
    ]  # fmt: skip
    out = {}
    for a, b in itertools.pairwise(STAGES[:4]):
        values = [(s[b] - s[a]) * 1000 for s in after if s[a] and s[b]]  # type: ignore[operator]
        out[f"{a}->{b}"] = round(percentile(values, 50), 1) if values else None
    out["webhooks"] = len(after)
    return out


def log_row(row: dict[str, Any]) -> None:
    c, d = row["committed"], row["delivered"]
    log(
        f"{row['fraction']:.2f}x = {row['rate']:.0f}/s ({row['sent']} sent): committed p50 "
        f"{c['p50']:.1f} p99 {c['p99']:.1f} max {c['max']:.1f} ms; delivered p50 {d['p50']:.1f}"
        f" p99 {d['p99']:.1f} max {d['max']:.1f} ms ({d['n']}); longest silence "
        f"{row['longest_silence_s']:.2f} s; {'kept up' if row['kept_up'] else 'FELL BEHIND'}"
    )


PG_ROLES = ("web", "worker", "deliveries", "beat")
CPU_ROLES = ("web", "worker", "deliveries", "beat", "redis", *(f"pg {r}" for r in PG_ROLES))


def _fraction(value: float | None) -> str:
    return "none" if value is None else f"{value:g}x"


def steady_table(result: dict[str, Any], reference: dict[str, Any]) -> str:
    """Latency per fraction, then CPU ms per webhook per process beside the reference's."""
    lines = [
        f"bare intake reference: {result['reference_rps']:.0f} req/s (8 connections); "
        f"knee: {_fraction(result['knee'])} "
        f"(highest fraction kept up with delivered p99 <= {KNEE_P99_MS:.0f} ms)",
        "",
        "| fraction | rate | committed p50 / p99 / max ms | delivered p50 / p99 / max ms "
        "| longest silence | silences > 1 s | kept up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        c, d = r["committed"], r["delivered"]
        lines.append(
            f"| {r['fraction']:.2f}x | {r['rate']:.0f}/s | {c['p50']:.1f} / {c['p99']:.1f} / "
            f"{c['max']:.0f} | {d['p50']:.1f} / {d['p99']:.1f} / {d['max']:.0f} | "
            f"{r['longest_silence_s']:.2f} s | {len(r['silences'])} | "
            f"{'yes' if r['kept_up'] else 'no'} |"
        )
    lines += ["", "CPU ms per webhook (per request for the reference, paced at "
              f"{reference['paced_rate']:.0f}/s)", ""]  # fmt: skip
    head = ["process", *(f"{r['fraction']:.2f}x" for r in result["rows"]), "reference"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = reference["cpu_ms"]
    for role in (*CPU_ROLES, "tally + postgresql", "sender", "receiver"):

        def value(cpu: dict[str, float], role: str = role) -> float | None:
            if role == "tally + postgresql":
                return sum(cpu.get(x, 0.0) for x in CPU_ROLES)
            return cpu.get(role)

        cells = [value(r["cpu_ms"]) for r in result["rows"]] + [value(ref)]
        lines.append(
            f"| {role} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in cells) + " |"
        )
    ratios = [
        sum(r["cpu_ms"].get(x, 0) for x in CPU_ROLES) / sum(ref.get(x, 0) for x in CPU_ROLES)
        for r in result["rows"]
    ]
    lines.append("| x reference | " + " | ".join(f"{x:.1f}x" for x in ratios) + " | 1.0x |")
    lines += [
        "",
        "Waited for a CPU (run queue), ms per webhook",
        "",
        "| process | " + " | ".join(head[1:-1]) + " |",
        "|" + "---|" * (len(head) - 1),
    ]
    for role in ("web", "worker", "deliveries", "pg worker", "pg deliveries"):
        lines.append(
            f"| {role} | "
            + " | ".join(f"{r['run_queue_ms'].get(role, 0):.2f}" for r in result["rows"])
            + " |"
        )
    lines += ["", "Per webhook", "", "| count | " + " | ".join(head[1:-1]) + " |",
              "|" + "---|" * (len(head) - 1)]  # fmt: skip
    for name in result["rows"][0]["per_webhook"]:
        lines.append(
            f"| {name} | " + " | ".join(f"{r['per_webhook'][name]:.2f}" for r in result["rows"])
            + " |"
        )  # fmt: skip
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4.2), dpi=100, sharey=True)
    for ax, row in zip(axes if len(rows) > 1 else [axes], rows, strict=True):
        for index, name, color in ((3, "committed", "tab:blue"), (6, "delivered", "tab:orange")):
            points = [(s[0], s[index]) for s in row["series"] if s[index] is not None]
            ax.scatter([p[0] for p in points], [max(p[1], 0.1) for p in points], s=2, alpha=0.5,
                       color=color, label=f"{name} p99 {row[name]['p99']:.0f} ms")  # fmt: skip
        for n, silence in enumerate(row["silences"]):
            ax.axvspan(silence["at_s"], silence["at_s"] + silence["length_s"], color="red",
                       alpha=0.1, label=None if n else "silence > 1 s (commit time)")  # fmt: skip
        ax.axhline(KNEE_P99_MS, color="grey", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("seconds (webhook sent)")
        ax.set_title(f"{row['fraction']:.2f}x reference = {row['rate']:.0f}/s", fontsize=9)
        ax.legend(loc="upper left", fontsize=7, markerscale=3)
        ax.grid(True, which="both", alpha=0.2)
    (axes[0] if len(rows) > 1 else axes).set_ylabel("webhook sent -> (ms)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def details(rows: list[dict[str, Any]]) -> str:
    """Per fraction: each silence, the worker's backends by state, the longest silence
    and the stages' p50 / p99."""
    lines = []
    for row in rows:
        at = f"  {row['fraction']:.2f}x"
        for silence in row["silences"]:
            lines.append(
                f"{at} silence at {silence['at_s']:.1f} s: {silence['length_s']:.2f} s,"
                f" {silence['stalled']}"
            )
        lines.append(f"{at} worker's backends, samples by state: {row['pg_worker_states']}")
        if row["longest_silence"]:
            longest = row["longest_silence"]
            lines.append(
                f"{at} longest silence at {longest['at_s']:.1f} s: "
                f"{row['longest_silence_s']:.2f} s, {longest['stalled']}"
            )
        steps = ", ".join(f"{k} {v['p50']:.1f} / {v['p99']:.1f}" for k, v in row["steps"].items())
        lines.append(f"{at} stages (p50 / p99 ms): {steps}")
    return "\n".join(lines)
