"""The run record: one small JSON file per run, ``OUTPUT/metadata/_summary-<run id>.json``.

What an operator alerts on and charts, night after night, without reading a row of Parquet: the
run's id, start and end, its rows by status and by the reason each was rendered, its seconds, the
medians of the output metrics over the rows this run rendered, the output's state after the run,
and the drift of those medians against the last run that rendered rows. Its schema is
``ray_jobs/run_record.schema.json`` (JSON Schema 2020-12), tabled in ``ray_jobs/README.md``;
:data:`RECORD_VERSION` changes when a field's meaning does.

The name starts with an underscore so that the readers of the metadata folder as one Parquet
dataset (``pyarrow.dataset.dataset("OUTPUT/metadata")``, ``pandas.read_parquet``, Spark) pass it
over, as they pass over ``_SUCCESS`` and ``_common_metadata``; DuckDB's ``*.parquet`` glob never
matched it. Written once, at the end of a run that reached its rows (:func:`ray_jobs.job.run_job`), whole or
not at all (:func:`stylecore.storage.write_bytes`), so also under ``s3://``. A run refused before
any row ran (exit status 2) writes none; nor does an interrupted one, whose finished rows are in
the metadata and counted by the next run's record as skipped.

**Drift.** A median's change is relative, ``(this - previous) / |previous|``, against the latest
earlier run with a median of that metric (a run that rendered nothing, such as an unchanged rerun,
has none and is passed over): the three metrics' scales differ by five orders of magnitude
(ΔE*ab about 4, SSIM about 0.7, energy about 4e-5), a fraction reads the same for all. With a
threshold (``--alert-on-drift 0.05``) each metric whose change is larger in either direction is
flagged: a sudden improvement is as suspect as a regression (an output equal to its content photo
has SSIM 1). The medians are over the rows each run rendered: after a change that renders every
row again (weights, render version, configuration) that is the whole set, on other nights the new
and changed rows only, so a flag on a night of three new rows is weaker evidence than one on a full
re-render; ``rendered_with_metrics`` says how many rows each median is over.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_jobs.errors import JobError, one_line
from ray_jobs.metadata import metadata_folder
from ray_jobs.run_summary import SHORT_METRIC_LABELS
from ray_jobs.schema import metric_column
from stylecore.errors import StorageError
from stylecore.metrics import METRIC_NAMES
from stylecore.storage import join, list_files, read_bytes, resolve, write_bytes

RECORD_VERSION = 1
RECORD_GLOB = "_summary-*.json"
SCHEMA_FILE = Path(__file__).with_name("run_record.schema.json")
"""The record's JSON Schema, the documentation the tests validate every record against."""


@dataclasses.dataclass(frozen=True)
class Drift:
    """This run's output medians against the latest earlier run's (module docstring)."""

    previous_run: str | None
    """The run compared against: the latest earlier one with a median; ``None`` when none has any."""
    change: dict[str, float | None]
    """Metric to its relative change, ``(this - previous) / |previous|``; ``None`` where either median is
    missing (or the previous is 0)."""
    threshold: float | None
    """The ``--alert-on-drift`` fraction, ``None`` when not asked for."""
    flagged: list[str]
    """Metrics whose ``|change|`` exceeds ``threshold``, in :data:`~stylecore.metrics.METRIC_NAMES` order."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run's record; :meth:`to_json` is the file (field meanings: the schema file)."""

    run_id: str
    started_at: datetime.datetime
    finished_at: datetime.datetime
    seconds: float
    rows: dict[str, int]
    """Status (``ok``, ``error``, ``skipped``) to this run's rows with it."""
    reasons: dict[str, int]
    """Why rows were rendered (``new``, ``configuration changed``, ...) to their number; empty when not known."""
    medians: dict[str, float | None]
    """Output metric to its median over this run's ``ok`` rows; ``None`` when no such row has it."""
    rendered_with_metrics: int
    output: dict[str, int]
    """The output after the run, latest row per id: ``rows``, ``ok`` (an image is there), ``error``."""
    drift: Drift
    record_version: int = RECORD_VERSION

    def to_json(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["started_at"], fields["finished_at"] = map(_timestamp, (self.started_at, self.finished_at))
        return {"record_version": fields.pop("record_version"), **fields}

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> RunRecord:
        return cls(**{**fields, "drift": Drift(**fields["drift"]),
                      "started_at": _parse_timestamp(fields["started_at"]),
                      "finished_at": _parse_timestamp(fields["finished_at"])})

    @property
    def drifted(self) -> bool:
        return bool(self.drift.flagged)


def record_run(output: str, *, run_id: str, seconds: float, rows: dict[str, int], reasons: Mapping[str, int],
               metadata_path: str, output_state: dict[str, int],
               alert_on_drift: float | None) -> tuple[RunRecord, str]:
    """Make the record of the run that just ended (its own metadata file read for the medians, the
    earlier records for the drift; ``output_state``: :func:`ray_jobs.state.state_counts` after the
    run), write it; it and its location."""
    finished_at = datetime.datetime.now(datetime.timezone.utc)
    started_at = finished_at - datetime.timedelta(seconds=seconds)
    medians, rendered = run_medians(metadata_path)
    earlier = [record for record in read_records(output)[0] if record.run_id < run_id]
    record = RunRecord(run_id=run_id, started_at=_milliseconds(started_at), finished_at=_milliseconds(finished_at), seconds=seconds, rows=rows, reasons=dict(reasons), medians=medians,
                       rendered_with_metrics=rendered, output=output_state,
                       drift=drift(medians, earlier, alert_on_drift))
    return record, write_record(output, record)


def record_file(output: str, run_id: str) -> str:
    """Where run ``run_id``'s record goes: beside its metadata file."""
    return join(metadata_folder(output), f"_summary-{run_id}.json")


def read_records(output: str) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """Every run record of ``output``, oldest first, and (file, reason) for each that cannot be read."""
    records, unreadable = [], []
    for path in list_files(metadata_folder(output), RECORD_GLOB):
        try:
            records.append(RunRecord.from_json(json.loads(read_bytes(path))))
        except (OSError, StorageError, ValueError, TypeError, KeyError) as error:
            unreadable.append((path, one_line(error)))
    return sorted(records, key=lambda record: record.run_id), unreadable


def write_record(output: str, record: RunRecord) -> str:
    """Write ``record`` to :func:`record_file`, whole or not at all; its location.

    Raises :class:`JobError` when it cannot be written.
    """
    path = record_file(output, record.run_id)
    try:
        write_bytes(path, (json.dumps(record.to_json(), indent=2, allow_nan=False) + "\n").encode())
    except (OSError, StorageError) as error:
        raise JobError(f"cannot write the run record {path} ({one_line(error)}); the run's rows are in "
                       f"its metadata file.") from None
    return path


def drift(medians: Mapping[str, float | None], earlier: list[RunRecord], threshold: float | None) -> Drift:
    """``medians`` against the latest of ``earlier`` (oldest first) that has any median."""
    previous = next((record for record in reversed(earlier) if any(value is not None for value in record.medians.values())),
                    None)
    change = {metric: relative_change(medians.get(metric), previous.medians.get(metric) if previous else None)
              for metric in METRIC_NAMES}
    flagged = [metric for metric in METRIC_NAMES
               if threshold is not None and change[metric] is not None and abs(change[metric]) > threshold]
    return Drift(previous_run=previous.run_id if previous else None, change=change, threshold=threshold,
                 flagged=flagged)


def relative_change(current: float | None, previous: float | None) -> float | None:
    """``(current - previous) / |previous|``; ``None`` when either is missing or ``previous`` is 0 (no scale)."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def run_medians(metadata_path: str) -> tuple[dict[str, float | None], int]:
    """Each output metric's median over the ``ok`` rows of one run's metadata file, and how many ``ok``
    rows have every metric (reads that file's status and output metric columns only)."""
    filesystem, within = resolve(metadata_path)
    columns = ["status", *(metric_column("output", metric) for metric in METRIC_NAMES)]
    table = pq.read_table(within, filesystem=filesystem, columns=columns)
    rendered = table.filter(pc.equal(table["status"], "ok"))
    values = {metric: rendered[metric_column("output", metric)].to_numpy(zero_copy_only=False).astype(float)
              for metric in METRIC_NAMES}
    medians = {metric: float(np.median(column[np.isfinite(column)])) if np.isfinite(column).any() else None
               for metric, column in values.items()}
    complete = np.logical_and.reduce([np.isfinite(column) for column in values.values()]) if rendered.num_rows \
        else np.zeros(0, bool)
    return medians, int(complete.sum())


def _timestamp(moment: datetime.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the millisecond: ``2026-12-07T02:00:00.123Z``."""
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _milliseconds(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` to the millisecond, as the file holds it, so a record equals itself read back."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _parse_timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def drift_text(record: RunRecord) -> str:
    """One line for the console: the medians, each one's change, and what drifted past the threshold."""
    if record.rendered_with_metrics == 0:
        return "medians: none (no row rendered with metrics)"
    against = f" vs run {record.drift.previous_run}" if record.drift.previous_run else ""
    parts = []
    for metric in METRIC_NAMES:
        value, change = record.medians[metric], record.drift.change[metric]
        moved = f" ({change:+.1%})" if change is not None else ""
        parts.append(f"{SHORT_METRIC_LABELS[metric]} {'—' if value is None else f'{value:.4g}'}{moved}")
    text = f"medians over {record.rendered_with_metrics} rendered row(s){against}: {', '.join(parts)}"
    if record.drifted:
        flagged = ", ".join(SHORT_METRIC_LABELS[metric] for metric in record.drift.flagged)
        text += f"; DRIFT past {record.drift.threshold:.1%}: {flagged}"
    return text
