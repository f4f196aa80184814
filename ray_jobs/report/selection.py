"""Which rows the report shows: every row of a small run; of a large one, the extremes and a sample.

A page with a table row and five thumbnails per pair is right for 60 pairs and unopenable for
100,000. Below :attr:`ReportOptions.full_table_below` rows the page shows them all, as one table
sorted by id. From there on it shows, per output metric, the ``top`` worst and ``top`` best
rendered rows (what to look at first: failures of quality, and what the method does at its best),
and a random sample of ``sample`` rows (what a typical result looks like), so the page holds at
most ``6 x top + sample`` rows however large the run.

The sample is the ``sample`` ids with the smallest SHA-256 of ``"<seed>:<id>"``: the same run and
seed give the same rows, and a nightly run that adds rows keeps most of yesterday's sample (a row
leaves it only when a new one hashes lower), so the same pairs can be followed from night to night.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pyarrow as pa

from ray_jobs.run_summary import METRIC_LABELS, RENDERED_STATUSES, SHORT_METRIC_LABELS, float_column, status_is
from ray_jobs.schema import metric_column
from stylecore.metrics import BETTER, METRIC_NAMES


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    """How much of a run the report shows (``python -m ray_jobs.report --help``)."""

    top: int = 10
    """Worst and best rows shown per output metric."""
    sample: int = 100
    """Rows in the random sample."""
    full_table_below: int = 500
    """Runs with fewer rows than this show every row instead of the extremes and the sample."""
    seed: int = 0
    """Chooses the sample."""
    sheet_rows: int = 200
    """Rows drawn on the contact sheet, the page's first distinct rows, so that it stays an image
    that opens."""


@dataclasses.dataclass(frozen=True)
class Section:
    """A titled group of rows on the page."""

    title: str
    label: str
    """A short name, for the page's list of sections."""
    anchor: str
    """The HTML id of its heading."""
    rows: np.ndarray
    """Indices into the latest rows (sorted by id), in the order shown."""


def sections(table: pa.Table, options: ReportOptions) -> list[Section]:
    """The row sections of the page for ``table``, the latest rows sorted by id (module docstring)."""
    if table.num_rows < options.full_table_below:
        return [Section("Pairs", "Pairs", "pairs", np.arange(table.num_rows))]
    shown = [extreme_rows(table, metric, worst=worst, count=options.top)
             for metric in METRIC_NAMES for worst in (True, False)]
    sample = sample_rows(table["id"].to_pylist(), options.sample, seed=options.seed)
    shown.append(Section(f"Random sample: {len(sample)} of {table.num_rows} rows (seed {options.seed})",
                         "Sample", "sample", sample))
    return shown


def extreme_rows(table: pa.Table, metric: str, *, worst: bool, count: int) -> Section:
    """The ``count`` rendered rows with the worst (or best) output ``metric``, worst (best) first; ties by id."""
    values = float_column(table, metric_column("output", metric))
    candidates = np.flatnonzero(status_is(table, RENDERED_STATUSES) & np.isfinite(values))
    higher_first = worst == (BETTER[metric] == "lower")
    keys = -values[candidates] if higher_first else values[candidates]
    chosen = candidates[np.argsort(keys, kind="stable")[:count]]
    adjective = "worst" if worst else "best"
    return Section(f"{adjective.capitalize()} {len(chosen)} by output {METRIC_LABELS[metric]} "
                   f"({BETTER[metric]} is better)", f"{adjective.capitalize()} {SHORT_METRIC_LABELS[metric]}",
                   f"{adjective}-{metric}", chosen)


def sample_rows(ids: list[str], size: int, *, seed: int) -> np.ndarray:
    """Indices of the ``size`` ids with the smallest SHA-256 of ``"<seed>:<id>"``, in id order."""
    keys = [hashlib.sha256(f"{seed}:{row_id}".encode()).digest() for row_id in ids]
    chosen = sorted(range(len(ids)), key=keys.__getitem__)[:size]
    return np.array(sorted(chosen), dtype=np.int64)
