"""The benchmark table's ratios and verdicts (bench/report.py); no benchmark runs."""

from bench.report import Figure, Target, percentile, table


def test_ratio_of_a_measured_ceiling_decides_a_relative_target() -> None:
    intake = Figure(
        "intake",
        "intake",
        400,
        "/s",
        ceiling=500,
        target=Target(0.8, at_least=True, of_ceiling=True),
    )
    slow = Figure(
        "intake",
        "intake",
        399,
        "/s",
        ceiling=500,
        target=Target(0.8, at_least=True, of_ceiling=True),
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
