"""The benchmark table's ratios and verdicts (bench/report.py); no benchmark runs."""

from bench.report import Figure, Target, table
from devtools.stats import percentile


def test_ratio_of_a_measured_ceiling_decides_a_relative_target() -> None:
    target = Target(0.8, at_least=True, of_ceiling=True)
    intake, slow = (
        Figure("intake", "intake", n, "/s", ceiling=500, target=target) for n in (400, 399)
    )
    assert intake.ratio == 0.8
    assert intake.verdict == "pass"
    assert slow.verdict == "MISS"


def test_absolute_target_without_ceiling_reports_the_ratio_to_the_target() -> None:
    p99 = Figure("e2e_p99", "p99", 60, "ms", target=Target(50, at_least=False))
    assert p99.ratio == 1.2
    assert p99.verdict == "MISS"
    assert p99.as_json()["ratio_of"] == "target"


def test_absolute_target_with_a_ceiling_is_judged_on_the_value() -> None:
    crediting = Figure(
        "credit", "crediting", 1200, "/s", ceiling=3000, ceiling_label="pgbench",
        target=Target(1000, at_least=True),
    )  # fmt: skip
    assert crediting.ratio == 0.4
    assert crediting.verdict == "pass"


def test_table_has_one_row_per_figure_and_aligned_columns() -> None:
    text = table(
        [
            Figure(
                "a",
                "attach",
                344,
                "/s",
                ceiling=1200,
                ceiling_label="hello",
                target=Target(500, True),
            ),
            Figure("r", "RSS deliveries", 70.5, "MB"),
        ]
    )
    lines = text.splitlines()
    assert len(lines) == 4
    assert len({len(line) for line in lines}) == 1
    assert "1,200/s hello" in lines[2] and "0.29x ceiling" in lines[2] and "MISS" in lines[2]
    assert "70.5 MB" in lines[3] and lines[3].rstrip(" |").endswith("-")


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0


def test_summary_is_the_runs_tables_in_markdown_beside_its_plot() -> None:
    """`python -m bench` writes bench/results/summary.md, which docs/benchmarks.md links."""
    from bench.__main__ import summary_markdown

    def stage(p50: float) -> dict[str, float]:
        return {"p50": p50, "p99": 2 * p50, "max": 3 * p50}

    row = {
        "fraction": 0.1, "rate": 85.0, "committed": stage(40.0), "delivered": stage(86.0),
        "longest_silence_s": 0.11, "silences": [], "kept_up": True,
        "cpu_ms": {"web": 2.1, "worker": 2.6}, "run_queue_ms": {"worker": 8.5},
        "per_webhook": {"drain tasks": 0.03},
    }  # fmt: skip
    document = {
        "command": "python -m bench",
        "commit": "abc1234",
        "when": "2026-12-07T02:11:17+0000",
        "cores": 2,
        "load_average": {"start": [7.2, 8.2, 6.9], "end": [6.2, 7.4, 6.9]},
        "table": table([Figure("r", "RSS deliveries", 70.5, "MB")]),
        "details": {
            "steady": {"reference_rps": 851.0, "knee": 0.1, "rows": [row]},
            "steady_reference": {"paced_rate": 170.0, "cpu_ms": {"web": 1.28}},
        },
    }
    text = summary_markdown(document)
    assert text.startswith("# Latest benchmark run\n")
    assert "at abc1234" in text and "load average 7.20 at start and 6.20 at end" in text
    assert "| RSS deliveries" in text and "70.5 MB" in text
    assert "| 0.10x | 85/s | 40.0 / 80.0 / 120 | 86.0 / 172.0 / 258 |" in text
    assert "](latency.png)" in text and "](../../docs/benchmarks.md)" in text
