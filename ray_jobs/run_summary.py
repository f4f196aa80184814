"""What a run's metadata says: the latest row per id, counts by status, metric spreads, time.

Reads every run file under ``OUTPUT/metadata/`` (:mod:`ray_jobs.metadata`). Metrics are those of
:mod:`stylecore.metrics`, measured on three images per pair, column ``<subject>_<metric>``:
``output`` (the result), ``content`` (the content photo unchanged) and ``reference`` (the
per-segment colour-statistics transfer, :mod:`stylecore.colour_transfer`). The report
(:mod:`ray_jobs.report`) shows it; :func:`summary_table` prints it. Rows stay a pyarrow table
throughout (a run of 100,000 rows never becomes 100,000 Python dicts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_jobs.metadata import RUN_FILE_GLOB, metadata_folder, value_counts
from ray_jobs.schema import STATUSES, metric_column
from stylecore.errors import StorageError
from stylecore.metrics import BETTER, METRIC_NAMES
from stylecore.storage import list_files, resolve

SUBJECTS = {"output": "output", "content": "content photo", "reference": "colour transfer"}
"""Column prefix of each measured image, and how the report names it."""
METRIC_LABELS = {"style_distance": "style distance (ΔE*ab)", "ssim": "SSIM",
                 "photorealism_energy": "photorealism energy"}
SHORT_METRIC_LABELS = {"style_distance": "style distance", "ssim": "SSIM", "photorealism_energy": "energy"}
RENDERED_STATUSES = ("ok", "skipped")
"""Rows whose image exists: rendered by this run (``ok``) or an earlier one (``skipped``)."""


def read_all_runs(run_dir: str) -> tuple[pa.Table, list[tuple[str, str]]]:
    """Every row of every run file, with every column any file has (null where a file lacks it).

    Unlike :func:`ray_jobs.metadata.read_table`, which reads into the current schema for resuming,
    this keeps columns the schema does not list (metrics of a newer version, added analyses), since
    a report shows what is there. Returns (table, [(file, reason) for each unreadable file]); the
    table has no columns when no file could be read.
    """
    tables, unreadable = [], []
    for path in list_files(metadata_folder(run_dir), RUN_FILE_GLOB):
        try:
            filesystem, within = resolve(path)
            tables.append(pq.read_table(within, filesystem=filesystem))
        except (OSError, pa.ArrowException, StorageError) as error:
            unreadable.append((path, " ".join(str(error).split())))
    if not tables:
        return pa.table({}), unreadable
    return pa.concat_tables(tables, promote_options="permissive"), unreadable


def latest_rows(table: pa.Table) -> pa.Table:
    """One row per id, the one with the greatest ``run_id`` (the latest run), sorted by id.

    Columnar (a sort and a comparison of neighbours), so 100,000 rows take well under a second and
    no row becomes a Python object.
    """
    ordered = table.take(pc.sort_indices(table, sort_keys=[("id", "ascending"), ("run_id", "descending")]))
    ids = ordered["id"].combine_chunks()
    first_of_id = np.ones(len(ids), bool)
    first_of_id[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    return ordered.filter(pa.array(first_of_id))


def float_column(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` as float64, NaN where null; all NaN when the table lacks it (an older schema)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table[name].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float)


def work_seconds(table: pa.Table) -> np.ndarray:
    """Each row's working seconds: ``work_seconds``, or ``seconds`` for rows of a schema before 4, which
    kept no waits apart (and on CPU actors waited none)."""
    work = float_column(table, "work_seconds")
    return np.where(np.isfinite(work), work, float_column(table, "seconds"))


def status_is(table: pa.Table, statuses: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows whose status is one of ``statuses``."""
    return pc.is_in(table["status"], value_set=pa.array(statuses)).to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class Spread:
    """Median and quartiles of one metric over the rendered rows that have it (NaN when none)."""

    median: float
    lower_quartile: float
    upper_quartile: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float | None] | np.ndarray) -> Spread:
        numbers = np.asarray(values, dtype=float)  # None becomes NaN
        finite = numbers[np.isfinite(numbers)]
        if finite.size == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        lower, median, upper = np.percentile(finite, [25, 50, 75])
        return cls(float(median), float(lower), float(upper), int(finite.size))


@dataclasses.dataclass(frozen=True)
class Summary:
    """What the top of the report says about the latest row of every id."""

    status_counts: dict[str, int]
    metrics: dict[tuple[str, str], Spread]
    """(subject, metric) to its spread over rendered rows."""
    worker_seconds: float
    """Sum of working seconds (:func:`work_seconds`) over rendered rows: the worker time the rendered images
    took, not wall-clock time."""
    median_seconds: float
    """Median working seconds of a rendered row."""
    wait_seconds: float
    """Sum of ``wait_seconds`` over rendered rows: time they waited for their actor's device, apart from their work."""
    latest_run: str
    """``run_id`` of the latest run shown."""
    latest_run_wall_seconds: float
    """First ``started_at`` to last ``finished_at`` over the rows the latest run worked on (ok or
    error); NaN when it worked on none."""
    unreadable: list[tuple[str, str]]

    @classmethod
    def of(cls, table: pa.Table, unreadable: list[tuple[str, str]]) -> Summary:
        """The summary of ``table``, the latest rows (:func:`latest_rows`), which holds at least one row."""
        rendered = status_is(table, RENDERED_STATUSES)
        seconds = work_seconds(table)[rendered]
        seconds = seconds[np.isfinite(seconds)]
        waits = float_column(table, "wait_seconds")[rendered]
        statuses = value_counts(table["status"])
        latest_run = pc.max(table["run_id"]).as_py()
        return cls(
            status_counts={status: statuses.get(status, 0) for status in STATUSES},
            metrics={(subject, metric): Spread.of(float_column(table, metric_column(subject, metric))[rendered])
                     for metric in METRIC_NAMES for subject in SUBJECTS},
            worker_seconds=float(seconds.sum()),
            median_seconds=float(np.median(seconds)) if seconds.size else float("nan"),
            wait_seconds=float(np.nansum(waits)),
            latest_run=latest_run, latest_run_wall_seconds=_wall_seconds(table, latest_run), unreadable=unreadable)


def _wall_seconds(table: pa.Table, run_id: str) -> float:
    """First ``started_at`` to last ``finished_at`` over the rows run ``run_id`` worked on (ok or error)
    that record both; NaN when none does."""
    if not {"started_at", "finished_at"} <= set(table.column_names):
        return float("nan")
    worked = table.filter(pc.and_(pc.equal(table["run_id"], run_id), status_is(table, ("ok", "error"))))
    worked = worked.filter(pc.and_(pc.is_valid(worked["started_at"]), pc.is_valid(worked["finished_at"])))
    if worked.num_rows == 0:
        return float("nan")
    return (pc.max(worked["finished_at"]).as_py() - pc.min(worked["started_at"]).as_py()).total_seconds()


def load_run(run_dir: str) -> tuple[pa.Table, Summary]:
    """The latest row per id of ``run_dir`` (sorted by id) and their summary.

    Raises ``FileNotFoundError`` when no run file can be read.
    """
    every_row, unreadable = read_all_runs(run_dir)
    if every_row.num_rows == 0:
        raise FileNotFoundError(f"no readable metadata rows under {metadata_folder(run_dir)}"
                                + "".join(f"; {path}: {reason}" for path, reason in unreadable))
    table = latest_rows(every_row)
    return table, Summary.of(table, unreadable)


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
    """One sentence: worker time of the rendered images, per pair, and the latest run's wall clock."""
    wall = (f"{format_value(summary.latest_run_wall_seconds)} s wall clock from its first start to its last finish"
            if np.isfinite(summary.latest_run_wall_seconds) else "recorded no times")
    waited = f" (and {summary.wait_seconds:.1f} s waiting for a device)" if summary.wait_seconds > 0 else ""
    return (f"time: {summary.worker_seconds:.1f} s of worker time for the rendered images{waited}, median "
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
