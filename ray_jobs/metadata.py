"""The Parquet files under ``OUTPUT/metadata/``: one per run, always complete, read together as one dataset.

A run's rows go to ``OUTPUT/metadata/run-<run id>.parquet``. :class:`MetadataWriter` rewrites that
file as rows finish, whole, beside its final name and then renamed over it (:mod:`stylecore.atomic`),
at most every ``flush_seconds`` and once more at the end. A reader, or a rerun after a crash,
therefore sees the last complete version of the file and never a torn one; a crash loses at most
the rows of the last ``flush_seconds``, which a rerun redoes. The temporary files start with a dot
and do not match :data:`RUN_FILE_GLOB`, so no reader ever picks one up.

One file per run (not one per row, not a shared file appended to) keeps each run's result in one
place, keeps the file count proportional to runs, and needs no locking between runs.

In an object store (``--output s3://...``) each write is one whole object put
(:func:`stylecore.storage.write_bytes`): the object appears complete or the previous version stays,
as with the rename; there are no temporary objects. ``pyarrow.dataset.dataset("s3://.../metadata")``
and DuckDB's ``read_parquet('s3://.../metadata/*.parquet')`` read the folder as one dataset.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ray_jobs.records import Record
from ray_jobs.schema import METADATA_SCHEMA
from stylecore.errors import StorageError
from stylecore.storage import join, list_files, resolve, write_bytes

METADATA_FOLDER = "metadata"
RUN_FILE_GLOB = "run-*.parquet"


def metadata_folder(output: str) -> str:
    """Where an output folder's (or URI prefix's) metadata files are."""
    return join(output, METADATA_FOLDER)


def run_file(output: str, run_id: str) -> str:
    """The metadata file of run ``run_id``."""
    return join(metadata_folder(output), f"run-{run_id}.parquet")


def write_rows(path: str, rows: Iterable[Record]) -> None:
    """Write ``rows`` as one Parquet file with :data:`METADATA_SCHEMA`, whole or not at all."""
    table = pa.Table.from_pylist(list(rows), schema=METADATA_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes(path, buffer.getvalue())


def read_rows(output: str) -> tuple[list[Record], list[tuple[str, str]]]:
    """Every row of every run file in ``output``, in the current schema (a column a file lacks is null).

    Returns (rows, unreadable) where ``unreadable`` lists (file, reason) for files that cannot be
    read; their rows are left out, so a rerun redoes those rows rather than trusting them.
    """
    rows: list[Record] = []
    unreadable: list[tuple[str, str]] = []
    for path in list_files(metadata_folder(output), RUN_FILE_GLOB):
        try:
            filesystem, within = resolve(path)
            table = ds.dataset(within, filesystem=filesystem, format="parquet", schema=METADATA_SCHEMA).to_table()
            rows.extend(table.to_pylist())
        except (OSError, pa.ArrowException, StorageError) as error:
            unreadable.append((path, " ".join(str(error).split())))
    return rows, unreadable


class MetadataWriter:
    """Collects a run's rows and keeps its file up to date (module docstring)."""

    def __init__(self, path: str, *, flush_seconds: float = 5.0) -> None:
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
