"""The Parquet files under ``OUTPUT/metadata/``: complete files only, read together as one dataset.

While a run is going, :class:`MetadataWriter` writes the rows finished since its last write as a
new part file, ``run-<run id>.part-<n>.parquet``, at most every ``flush_seconds`` and once more at
the end; nothing written before is rewritten, so a flush costs the new rows only, however long the
run. When the run ends (also on Ctrl-C or SIGTERM) it compacts its parts into one file,
``run-<run id>.parquet``, and removes them. A run killed outright (SIGKILL, a lost node) leaves its
parts: they are complete files and read like any other.

Every local file is written beside its final name under a temporary name that starts with a dot
and does not end in ``.parquet``, then renamed over it, so neither a reader (``read_parquet(
'OUTPUT/metadata/*.parquet')`` in DuckDB, pyarrow, pandas) nor a rerun ever sees a torn file or a
temporary one. In an object store (``--output s3://...``) each file is one whole object put
(:func:`stylecore.storage.write_bytes`): the object appears complete or not at all, and there are
no temporary objects; parts are found by listing the one ``metadata/`` prefix.
``pyarrow.dataset.dataset("s3://.../metadata")`` and DuckDB's
``read_parquet('s3://.../metadata/*.parquet')`` read the folder as one dataset. During the instant
between the compacted file's write and the removal of the parts a reader may see a run's rows
twice; :func:`latest_rows` keeps one row per id.

:class:`OutputLock` keeps two live runs out of one local output folder; an object store cannot
hold such a lock, so one run per output prefix is the user's to ensure there.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ray_jobs.errors import JobError, one_line
from ray_jobs.records import Record
from ray_jobs.schema import METADATA_SCHEMA
from stylecore.errors import StorageError
from stylecore.storage import is_local, join, list_files, remove, resolve, write_bytes

METADATA_FOLDER = "metadata"
RUN_FILE_GLOB = "run-*.parquet"
LOCK_FILE = ".lock"
RUN_FACTS_KEY = b"stylecore.run"
"""Parquet metadata key of a compacted run file: JSON of what the run did beyond its rows
(``skipped``: rows not rendered as done already; ``reasons``: rows rendered by reason code)."""


def metadata_folder(output: str) -> str:
    """Where an output folder's (or URI prefix's) metadata files are."""
    return join(output, METADATA_FOLDER)


def run_file(output: str, run_id: str) -> str:
    """The compacted metadata file of run ``run_id``."""
    return join(metadata_folder(output), f"run-{run_id}.parquet")


def part_file(output: str, run_id: str, number: int) -> str:
    """Part ``number`` (from 1) of run ``run_id``, written while the run goes on."""
    return join(metadata_folder(output), f"run-{run_id}.part-{number:05d}.parquet")


def write_table(path: str, table: pa.Table) -> None:
    """Write ``table`` as one Parquet file, whole or not at all (module docstring)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes(path, buffer.getvalue())


def write_rows(path: str, rows: Iterable[Record]) -> None:
    """Write ``rows`` as one Parquet file with :data:`METADATA_SCHEMA`, whole or not at all."""
    write_table(path, pa.Table.from_pylist(list(rows), schema=METADATA_SCHEMA))


def metadata_files(output: str) -> list[str]:
    """Every run and part file of ``output``, sorted by name (so by run start time)."""
    return list_files(metadata_folder(output), RUN_FILE_GLOB)


def read_table(output: str, columns: Sequence[str] | None = None) -> tuple[pa.Table, list[tuple[str, str]]]:
    """``columns`` (default: all) of every metadata file in ``output``, in the current schema.

    A column a file lacks (an older schema version) reads as null. Returns (table, unreadable),
    where ``unreadable`` lists (file, reason) for files that cannot be read; their rows are left
    out, so a rerun redoes those rows rather than trusting them.
    """
    return read_files(metadata_files(output), columns)


def read_files(paths: Sequence[str], columns: Sequence[str] | None = None) -> tuple[pa.Table, list[tuple[str, str]]]:
    """:func:`read_table` of the metadata files ``paths``, in that order."""
    schema = METADATA_SCHEMA if columns is None else pa.schema([METADATA_SCHEMA.field(name) for name in columns])
    tables, unreadable = [], []
    for path in paths:
        try:
            filesystem, within = resolve(path)
            tables.append(ds.dataset(within, filesystem=filesystem, format="parquet", schema=schema).to_table())
        except (OSError, pa.ArrowException, StorageError) as error:
            unreadable.append((path, " ".join(str(error).split())))
    return (pa.concat_tables(tables) if tables else schema.empty_table()), unreadable


def latest_rows(table: pa.Table) -> pa.Table:
    """The last row of each id in ``table``'s order (files sorted by name, rows in file order)."""
    numbered = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    last = numbered.group_by("id", use_threads=False).aggregate([("_row", "max")])["_row_max"]
    return table.take(pc.take(last, pc.sort_indices(last)))


def value_counts(column: pa.Array | pa.ChunkedArray) -> dict:
    """How many times each value occurs in ``column`` (nulls left out), as a dict."""
    if len(column) == 0:
        return {}
    counted = pc.value_counts(column).flatten()
    return {value: count for value, count in zip(counted[0].to_pylist(), counted[1].to_pylist(), strict=True)
            if value is not None}


class MetadataWriter:
    """Writes a run's rows as part files, then one compacted file (module docstring).

    Raises :class:`JobError` when a file cannot be written (a full disk, no permission, a store
    that refuses); the files written before stay as they were.
    """

    def __init__(self, output: str, run_id: str, *, flush_seconds: float = 5.0) -> None:
        self.path = run_file(output, run_id)
        self._output, self._run_id = output, run_id
        self._pending: list[pa.Table] = []
        self._parts: list[str] = []
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()

    def add(self, record: Record) -> None:
        """Add one row; write the rows not yet written if the last write is ``flush_seconds`` old."""
        self.add_table(pa.Table.from_pylist([record], schema=METADATA_SCHEMA))

    def add_table(self, table: pa.Table) -> None:
        """Add rows given as a table of :data:`METADATA_SCHEMA` (as :meth:`add`)."""
        self._pending.append(table)
        self.flush_if_due()

    def flush_if_due(self) -> None:
        """Write the rows not yet written if the last write is ``flush_seconds`` old (call it often)."""
        if self._pending and time.monotonic() - self._last_flush >= self._flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the rows added since the last flush as a new part file (none if there are none)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        path = part_file(self._output, self._run_id, len(self._parts) + 1)
        self._write(path, pa.concat_tables(self._pending))
        self._parts.append(path)
        self._pending = []

    def close(self, run_facts: Mapping[str, object] | None = None) -> pa.Table:
        """Flush, then compact the run's parts into :attr:`path` and remove them; the run's rows.

        ``run_facts`` (JSON values) go into the compacted file's Parquet metadata under
        :data:`RUN_FACTS_KEY`: what the run did beyond its rows, such as the rows it skipped.
        """
        self.flush()
        table = pa.concat_tables(pq.read_table(within, filesystem=filesystem, schema=METADATA_SCHEMA)
                                 for filesystem, within in map(resolve, self._parts)) \
            if self._parts else METADATA_SCHEMA.empty_table()
        facts = {RUN_FACTS_KEY: json.dumps(run_facts or {}, sort_keys=True).encode()}
        self._write(self.path, table.replace_schema_metadata({**(table.schema.metadata or {}), **facts}))
        if not self._parts:
            return table
        try:
            for path in self._parts:
                remove(path)
        except (OSError, StorageError) as error:
            raise JobError(f"cannot remove the metadata part files of run {self._run_id} "
                           f"({one_line(error)}); the compacted file {self.path} holds their rows.") from None
        self._parts = []
        return table

    def _write(self, path: str, table: pa.Table) -> None:
        try:
            write_table(path, table)
        except (OSError, StorageError) as error:
            raise JobError(f"cannot write the metadata file {path} ({one_line(error)}); the rows written "
                           f"before are kept in {metadata_folder(self._output)}, and a rerun renders the rest.") \
                from None


class OutputLock:
    """An exclusive lock on a local output folder, held by one live run at a time.

    ``fcntl.flock`` on ``OUTPUT/.lock``: the kernel drops it when the holding process ends, however
    it ends, so a run killed outright never leaves the folder locked. The file names the holder
    (host, pid, run id) for the refusal's message. On network file systems flock is only as good
    as the file system's locking (NFS v4 and Lustre honour it; some FUSE mounts do not).

    An output in an object store is not locked: a store has no lock that its holder's death
    releases (a lock object left by a killed run would block every later run until removed by
    hand), so keeping one run per output prefix is the user's responsibility there (README).
    """

    def __init__(self, output: str, run_id: str) -> None:
        self._output = output
        self._run_id = run_id
        self._file = None

    def __enter__(self) -> OutputLock:
        if not is_local(self._output):
            return self
        path = resolve(join(self._output, LOCK_FILE))[1]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        file = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held open for the run)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise JobError(f"the output folder {self._output} is in use by a run that is still going "
                           f"({holder}); wait for it to end or choose another --output.") from None
        file.seek(0)
        file.truncate()
        file.write(f"run {self._run_id}, pid {os.getpid()} on {socket.gethostname()}")
        file.flush()
        self._file = file
        return self

    def __exit__(self, *_: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
