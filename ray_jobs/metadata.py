"""The Parquet files under ``OUTPUT/metadata/``: one per run, always complete, read together as one dataset.

A run's rows go to ``OUTPUT/metadata/run-<run id>.parquet``. :class:`MetadataWriter` rewrites that
file as rows finish, whole, beside its final name and then renamed over it (:mod:`stylecore.atomic`),
at most every ``flush_seconds`` and once more at the end. A reader, or a rerun after a crash,
therefore sees the last complete version of the file and never a torn one; a crash loses at most
the rows of the last ``flush_seconds``, which a rerun redoes. The temporary files start with a dot
and do not match :data:`RUN_FILE_GLOB`, so no reader ever picks one up.

One file per run (not one per row, not a shared file appended to) keeps each run's result in one
place, keeps the file count proportional to runs, and needs no locking between runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ray_jobs.records import Record
from ray_jobs.schema import METADATA_SCHEMA
from stylecore.atomic import atomic_path

METADATA_FOLDER = "metadata"
RUN_FILE_GLOB = "run-*.parquet"


def metadata_folder(output: Path) -> Path:
    """Where an output folder's metadata files are."""
    return output / METADATA_FOLDER


def run_file(output: Path, run_id: str) -> Path:
    """The metadata file of run ``run_id``."""
    return metadata_folder(output) / f"run-{run_id}.parquet"


def write_rows(path: Path, rows: Iterable[Record]) -> None:
    """Write ``rows`` as one Parquet file with :data:`METADATA_SCHEMA`, atomically."""
    table = pa.Table.from_pylist(list(rows), schema=METADATA_SCHEMA)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)


def read_rows(output: Path) -> tuple[list[Record], list[tuple[Path, str]]]:
    """Every row of every run file in ``output``, in the current schema (a column a file lacks is null).

    Returns (rows, unreadable) where ``unreadable`` lists (file, reason) for files that cannot be
    read; their rows are left out, so a rerun redoes those rows rather than trusting them.
    """
    rows: list[Record] = []
    unreadable: list[tuple[Path, str]] = []
    for path in sorted(metadata_folder(output).glob(RUN_FILE_GLOB)):
        try:
            rows.extend(ds.dataset(path, format="parquet", schema=METADATA_SCHEMA).to_table().to_pylist())
        except (OSError, pa.ArrowException) as error:
            unreadable.append((path, " ".join(str(error).split())))
    return rows, unreadable


class MetadataWriter:
    """Collects a run's rows and keeps its file up to date (module docstring)."""

    def __init__(self, path: Path, *, flush_seconds: float = 5.0) -> None:
        self.path = path
        self._rows: list[Record] = []
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()

    @property
    def rows(self) -> list[Record]:
        """The rows added so far (a copy)."""
        return list(self._rows)

    def add(self, record: Record) -> None:
        """Add one row; rewrite the file if the last write is ``flush_seconds`` old."""
        self._rows.append(record)
        if time.monotonic() - self._last_flush >= self._flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Rewrite the file with every row added so far."""
        write_rows(self.path, self._rows)
        self._last_flush = time.monotonic()
