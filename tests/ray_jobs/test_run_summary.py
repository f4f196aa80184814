"""Run summary: latest row per id across runs, and metric spreads with known answers."""

import numpy as np
import pyarrow as pa
import pytest

from ray_jobs.run_summary import Spread, Summary, format_value, latest_rows, summary_table


def test_latest_row_per_id_wins_and_rows_sort_by_id():
    rows = [{"id": "b", "run_id": "2", "status": "ok"}, {"id": "a", "run_id": "1", "status": "error"},
            {"id": "a", "run_id": "3", "status": "skipped"}, {"id": "b", "run_id": "1", "status": "error"}]
    latest = latest_rows(pa.Table.from_pylist(rows))
    assert list(zip(latest["id"].to_pylist(), latest["run_id"].to_pylist(), strict=True)) == [("a", "3"), ("b", "2")]


def test_spread_ignores_missing_values_and_uses_linear_quartiles():
    spread = Spread.of([4.0, 1.0, None, 3.0, float("nan"), 2.0])
    assert (spread.median, spread.lower_quartile, spread.upper_quartile, spread.count) == (2.5, 1.75, 3.25, 4)
    assert Spread.of([None]).count == 0 and np.isnan(Spread.of([]).median)


def test_summary_uses_rendered_rows_only():
    rows = [{"id": "a", "run_id": "1", "status": "ok", "seconds": 4.0, "output_ssim": 0.5},
            {"id": "b", "run_id": "1", "status": "skipped", "seconds": 6.0, "output_ssim": 0.7},
            {"id": "c", "run_id": "1", "status": "error", "seconds": 100.0, "output_ssim": None}]
    summary = Summary.of(pa.Table.from_pylist(rows), [])
    assert summary.status_counts == {"ok": 1, "error": 1, "skipped": 1}
    assert summary.worker_seconds == 10.0 and summary.median_seconds == 5.0
    spread = summary.metrics[("output", "ssim")]
    assert (spread.median, spread.lower_quartile, spread.upper_quartile, spread.count) == pytest.approx(
        (0.6, 0.55, 0.65, 2))
    assert summary.metrics[("reference", "ssim")].count == 0
    assert np.isnan(summary.latest_run_wall_seconds)
    table = summary_table(summary)
    assert "\n  output                    0.6       0.55       0.65     2\n" in table
    assert "rows: 3  (ok 1  error 1  skipped 1)" in table and "latest run 1 recorded no times" in table


def test_times_are_working_seconds_with_the_waits_apart():
    """Rows of schema 4 count their work_seconds, older rows (no column) their seconds; waits are summed apart."""
    rows = [{"id": "a", "run_id": "1", "status": "ok", "seconds": 9.0, "work_seconds": 4.0, "wait_seconds": 5.0},
            {"id": "b", "run_id": "1", "status": "ok", "seconds": 8.0, "work_seconds": 8.0, "wait_seconds": 0.0},
            {"id": "c", "run_id": "0", "status": "skipped", "seconds": 6.0, "work_seconds": None, "wait_seconds": None}]
    summary = Summary.of(pa.Table.from_pylist(rows), [])
    assert (summary.worker_seconds, summary.median_seconds, summary.wait_seconds) == (18.0, 6.0, 5.0)
    assert "18.0 s of worker time for the rendered images (and 5.0 s waiting for a device)" in summary_table(summary)


def test_a_run_without_rendered_rows_says_so_instead_of_empty_metric_headings():
    table = summary_table(Summary.of(pa.Table.from_pylist([{"id": "c", "run_id": "1", "status": "error",
                                                             "seconds": None}]), []))
    assert "metrics: none, as no rendered row has them" in table
    assert "SSIM" not in table and "—     0" not in table


def test_format_value():
    assert [format_value(value) for value in (2.697e-07, 0.001087, 14.391, 1.0, None, float("nan"))] == [
        "2.697e-07", "0.001087", "14.39", "1", "—", "—"]
