"""The report's charts, drawn with matplotlib into PNG files beside the page.

- ``charts/runs.png``: night over night (:mod:`ray_jobs.report.history`): per run, its rows
  rendered, skipped and failed, the median of each output metric (a run whose median drifted past
  the threshold marked in red; a run that rendered nothing leaves a gap), and its time.
- ``charts/histograms.png``: each output metric over the run's rendered rows (the latest row per
  id), over the middle 99 % of them, with the medians of the output, the content photo and the
  colour transfer as lines: where the bulk of the rows lies against the two references.

matplotlib's object API (:class:`matplotlib.figure.Figure` with its Agg canvas), not ``pyplot``:
no global figure state and no display backend, so it draws the same under cron, in a container
and in a test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ray_jobs.report.history import History
from ray_jobs.run_record import RunRecord
from ray_jobs.run_summary import (METRIC_LABELS, RENDERED_STATUSES, SUBJECTS, Summary, float_column, format_value,
                                  status_is)
from ray_jobs.schema import metric_column
from stylecore.atomic import atomic_path
from stylecore.metrics import BETTER, METRIC_NAMES

RUNS_CHART = "charts/runs.png"
HISTOGRAMS_CHART = "charts/histograms.png"
STATUS_COLOURS = {"ok": "#4c9a2a", "skipped": "#b8c4cc", "error": "#c0392b"}
DRIFT_COLOUR = "#c0392b"
HISTOGRAM_BINS = 40
DPI = 100


def runs_chart(history: History, report_dir: Path) -> str:
    """Draw :data:`RUNS_CHART` for ``history`` (at least one run); its path relative to ``report_dir``."""
    records = history.records
    positions = np.arange(len(records))
    figure = Figure(figsize=(11, 10), dpi=DPI, layout="constrained")
    counts, *metric_axes, time_axis = figure.subplots(2 + len(METRIC_NAMES), 1, sharex=True)
    _status_bars(counts, positions, records)
    for axis, metric in zip(metric_axes, METRIC_NAMES, strict=True):
        _median_line(axis, positions, records, metric)
    time_axis.bar(positions, [record.seconds / 60 for record in records], color="#5d6d7e")
    time_axis.set_ylabel("minutes")
    time_axis.set_xticks(positions, [f"{record.started_at:%m-%d %H:%M}" for record in records],
                         rotation=60 if len(records) > 8 else 0, fontsize=8)
    if len(records) > 40:  # a label per run would overlap: about 20 of them
        for index, label in enumerate(time_axis.get_xticklabels()):
            label.set_visible(index % (len(records) // 20 + 1) == 0)
    time_axis.set_xlabel("run start (UTC)")
    figure.suptitle(f"Runs of this output ({len(records)}): rows, medians of the rows each run rendered, time")
    return _save(figure, report_dir, RUNS_CHART)


def _status_bars(axis, positions: np.ndarray, records: list[RunRecord]) -> None:
    bottom = np.zeros(len(records))
    for status, label in (("ok", "rendered"), ("skipped", "skipped"), ("error", "failed")):
        heights = np.array([record.rows[status] for record in records], float)
        axis.bar(positions, heights, bottom=bottom, color=STATUS_COLOURS[status], label=label)
        bottom += heights
    axis.set_ylabel("rows")
    axis.set_ylim(0, max(bottom.max(), 1) * 1.3)  # room above the bars for the legend
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(loc="upper left", fontsize=8, ncols=3)


def _median_line(axis, positions: np.ndarray, records: list[RunRecord], metric: str) -> None:
    values = np.array([np.nan if record.medians.get(metric) is None else record.medians[metric]
                       for record in records])
    drifted = np.array([metric in record.drift.flagged for record in records])
    axis.plot(positions, values, marker="o", color="#2e86c1")
    axis.plot(positions[drifted], values[drifted], linestyle="none", marker="o", markersize=10,
              markerfacecolor="none", markeredgecolor=DRIFT_COLOUR, markeredgewidth=2,
              label="drifted" if drifted.any() else None)
    axis.set_ylabel(f"{METRIC_LABELS[metric]}\n({BETTER[metric]} better)", fontsize=9)
    if drifted.any():
        axis.legend(loc="upper left", fontsize=8)


def histograms_chart(table: pa.Table, summary: Summary, report_dir: Path) -> str | None:
    """Draw :data:`HISTOGRAMS_CHART` of ``table``'s rendered rows; its relative path, ``None`` when no
    rendered row has a metric."""
    rendered = status_is(table, RENDERED_STATUSES)
    values = {metric: float_column(table, metric_column("output", metric))[rendered] for metric in METRIC_NAMES}
    values = {metric: column[np.isfinite(column)] for metric, column in values.items()}
    if not any(column.size for column in values.values()):
        return None
    figure = Figure(figsize=(13, 3.6), dpi=DPI, layout="constrained")
    for axis, (metric, column) in zip(figure.subplots(1, len(METRIC_NAMES)), values.items(), strict=True):
        _histogram(axis, column, metric, summary)
    figure.axes[0].set_ylabel("rows")
    return _save(figure, report_dir, HISTOGRAMS_CHART)


def _histogram(axis, column: np.ndarray, metric: str, summary: Summary) -> None:
    """One metric's histogram over the middle 99 % of its rows (a few outliers would squeeze the rest
    into one bin), the three medians as lines, each valued in the legend, since a reference's median
    may lie off the axis."""
    if column.size == 0:
        axis.set_title(f"{METRIC_LABELS[metric]}: no rows", fontsize=10)
        return
    low, high = np.percentile(column, [0.5, 99.5])
    padding = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    shown = (low - padding, high + padding)
    outside = int(np.sum((column < shown[0]) | (column > shown[1])))
    axis.hist(column, bins=min(HISTOGRAM_BINS, column.size), range=shown, color="#85c1e9", edgecolor="#2e86c1")
    for subject, style in zip(SUBJECTS, ("-", "--", ":"), strict=True):
        median = summary.metrics[(subject, metric)].median
        if np.isfinite(median):
            axis.axvline(median, color="black", linestyle=style,
                         label=f"median, {SUBJECTS[subject]}: {format_value(median)}")
    axis.set_xlim(shown)
    axis.set_title(f"{METRIC_LABELS[metric]} ({BETTER[metric]} better)", fontsize=10)
    axis.set_xlabel(f"output, {column.size} rows" + (f" ({outside} off the axis)" if outside else ""))
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(fontsize=7)


def _save(figure: Figure, report_dir: Path, relative: str) -> str:
    with atomic_path(report_dir / relative) as temporary:
        figure.savefig(temporary, format="png")
    return relative
