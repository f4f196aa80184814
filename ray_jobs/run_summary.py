"""What a run's metadata says: the latest row per id, counts by status, metric spreads, time.

Reads every run file under ``OUTPUT/metadata/`` (:mod:`ray_jobs.metadata`). Metrics are those of
:mod:`stylecore.metrics`, measured on three images per pair, column ``<subject>_<metric>``:
``output`` (the result), ``content`` (the content photo unchanged) and ``reference`` (the
per-segment colour-statistics transfer, :mod:`stylecore.colour_transfer`). The report
(:mod:`ray_jobs.report`) shows it; :func:`summary_table` prints it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ray_jobs.metadata import RUN_FILE_GLOB, metadata_folder
from ray_jobs.schema import STATUSES, metric_column
from stylecore.errors import StorageError
from stylecore.metrics import BETTER, METRIC_NAMES
from stylecore.storage import list_files, resolve

SUBJECTS = {"output": "output", "content": "content photo", "reference": "colour transfer"}
"""Column prefix of each measured image, and how the report names it."""
METRIC_LABELS = {"style_distance": "style distance (ΔE*ab)", "ssim": "SSIM",
                 "photorealism_energy": "photorealism energy"}
RENDERED_STATUSES = ("ok", "skipped")
"""Rows whose image exists: rendered by this run (``ok``) or an earlier one (``skipped``)."""


def read_all_rows(run_dir: str) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Every row of every run file, with every column any file has (null where a file lacks it).

    Unlike :func:`ray_jobs.metadata.read_table`, which reads into the current schema for resuming,
    this keeps columns the schema does not list (metrics of a newer version, added analyses), since
    a report shows what is there. Returns (rows, [(file, reason) for each unreadable file]).
    """
    tables, unreadable = [], []
    for path in list_files(metadata_folder(run_dir), RUN_FILE_GLOB):
        try:
            filesystem, within = resolve(path)
            tables.append(pq.read_table(within, filesystem=filesystem))
        except (OSError, pa.ArrowException, StorageError) as error:
            unreadable.append((path, " ".join(str(error).split())))
    if not tables:
        return [], unreadable
    return pa.concat_tables(tables, promote_options="permissive").to_pylist(), unreadable


def latest_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per id, the one with the greatest ``run_id`` (the latest run), sorted by id."""
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row["id"] not in latest or row["run_id"] > latest[row["id"]]["run_id"]:
            latest[row["id"]] = row
    return [dict(latest[row_id]) for row_id in sorted(latest)]


@dataclasses.dataclass(frozen=True)
class Spread:
    """Median and quartiles of one metric over the rendered rows that have it (NaN when none)."""

    median: float
    lower_quartile: float
    upper_quartile: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread:
        finite = np.array([value for value in values if value is not None and np.isfinite(value)])
        if finite.size == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        lower, median, upper = np.percentile(finite, [25, 50, 75])
        return cls(float(median), float(lower), float(upper), int(finite.size))


@dataclasses.dataclass(frozen=True)
class Summary:
    """What the top of the report says about the rows shown."""

    status_counts: dict[str, int]
    metrics: dict[tuple[str, str], Spread]
    """(subject, metric) to its spread over rendered rows."""
    worker_seconds: float
    """Sum of ``seconds`` over rendered rows: the worker time the images shown took, not wall-clock time."""
    median_seconds: float
    latest_run: str
    """``run_id`` of the latest run shown."""
    latest_run_wall_seconds: float
    """First ``started_at`` to last ``finished_at`` over the rows the latest run worked on (ok or
    error); NaN when it worked on none."""
    unreadable: list[tuple[str, str]]

    @classmethod
    def of(cls, rows: Sequence[Mapping[str, Any]], unreadable: list[tuple[str, str]]) -> Summary:
        rendered = [row for row in rows if row["status"] in RENDERED_STATUSES]
        seconds = [row["seconds"] for row in rendered if row.get("seconds") is not None]
        latest_run = max(row["run_id"] for row in rows)
        worked = [row for row in rows if row["run_id"] == latest_run and row["status"] in ("ok", "error")
                  and row.get("started_at") is not None and row.get("finished_at") is not None]
        wall = (max(row["finished_at"] for row in worked) - min(row["started_at"] for row in worked)
                ).total_seconds() if worked else float("nan")
        return cls(
            status_counts={status: sum(row["status"] == status for row in rows) for status in STATUSES},
            metrics={(subject, metric): Spread.of([row.get(metric_column(subject, metric)) for row in rendered])
                     for metric in METRIC_NAMES for subject in SUBJECTS},
            worker_seconds=float(sum(seconds)),
            median_seconds=float(np.median(seconds)) if seconds else float("nan"),
            latest_run=latest_run, latest_run_wall_seconds=wall, unreadable=unreadable)


def load_run(run_dir: str) -> tuple[list[dict[str, Any]], Summary]:
    """The latest row per id of ``run_dir`` (sorted by id) and their summary.

    Raises ``FileNotFoundError`` when no run file can be read.
    """
    all_rows, unreadable = read_all_rows(run_dir)
    if not all_rows:
        raise FileNotFoundError(f"no readable metadata rows under {metadata_folder(run_dir)}"
                                + "".join(f"; {path}: {reason}" for path, reason in unreadable))
    rows = latest_rows(all_rows)
    return rows, Summary.of(rows, unreadable)


def format_value(value: float | None) -> str:
    """Four significant digits (scientific below 1e-4); an em dash for a missing value."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.4g}"


def spread_text(spread: Spread) -> str:
    """``median (IQR lower–upper, n=count)``, or an em dash when no row has the metric."""
    if spread.count == 0:
        return "—"
    return (f"{format_value(spread.median)} "
            f"(IQR {format_value(spread.lower_quartile)}–{format_value(spread.upper_quartile)}, n={spread.count})")


def time_text(summary: Summary) -> str:
    """One sentence: worker time of the images shown, per pair, and the latest run's wall clock."""
    wall = (f"{format_value(summary.latest_run_wall_seconds)} s wall clock from its first start to its last finish"
            if np.isfinite(summary.latest_run_wall_seconds) else "recorded no times")
    return (f"time: {summary.worker_seconds:.1f} s of worker time for the rendered images shown, median "
            f"{format_value(summary.median_seconds)} s per pair; latest run {summary.latest_run} {wall}")


def summary_table(summary: Summary) -> str:
    """The summary as plain text: status counts, then one line per metric and measured image (or one
    line saying no rendered row has metrics), then time."""
    counts = "  ".join(f"{status} {count}" for status, count in summary.status_counts.items())
    lines = [f"rows: {sum(summary.status_counts.values())}  ({counts})", "", *_metric_lines(summary),
             "", time_text(summary)]
    lines += [f"unreadable metadata file {path}: {reason}" for path, reason in summary.unreadable]
    return "\n".join(lines)


def _metric_lines(summary: Summary) -> list[str]:
    if not any(spread.count for spread in summary.metrics.values()):
        return ["metrics: none, as no rendered row has them (the errors are in the report)"]
    lines = [f"{'metric, image':<20}{'median':>11}{'IQR from':>11}{'to':>11}{'n':>6}"]
    for metric in METRIC_NAMES:
        lines.append(f"{METRIC_LABELS[metric]}, {BETTER[metric]} is better")
        for subject, subject_name in SUBJECTS.items():
            spread = summary.metrics[(subject, metric)]
            lines.append(f"  {subject_name:<18}{format_value(spread.median):>11}"
                         f"{format_value(spread.lower_quartile):>11}{format_value(spread.upper_quartile):>11}"
                         f"{spread.count:>6}")
    return lines
