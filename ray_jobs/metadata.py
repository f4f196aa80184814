"""The Parquet files under ``OUTPUT/metadata/``: complete files only, read together as one dataset.

While a run is going, :class:`MetadataWriter` writes the rows finished since its last write as a
new part file, ``run-<run id>.part-<n>.parquet``, at most every ``flush_seconds`` and once more at
the end; nothing written before is rewritten, so a flush costs the new rows only, however long the
run. When the run ends (also on Ctrl-C or SIGTERM) it compacts its parts into one file,
``run-<run id>.parquet``, and removes them. A run killed outright (SIGKILL, a lost node) leaves its
parts: they are complete files and read like any other.

Every file is written beside its final name under a temporary name that starts with a dot and
does not end in ``.parquet``, then renamed over it, so neither a reader (``read_parquet(
'OUTPUT/metadata/*.parquet')`` in DuckDB, pyarrow, pandas) nor a rerun ever sees a torn file or a
temporary one. During the instant between the compacted file's rename and the removal of the
parts a reader may see a run's rows twice; :func:`latest_rows` keeps one row per id.

:class:`OutputLock` keeps two live runs out of one output folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ray_jobs.errors import JobError, one_line
from ray_jobs.records import Record
from ray_jobs.schema import METADATA_SCHEMA

METADATA_FOLDER = "metadata"
RUN_FILE_GLOB = "run-*.parquet"
LOCK_FILE = ".lock"
_TEMPORARY_SUFFIX = ".partial"


def metadata_folder(output: Path) -> Path:
    """Where an output folder's metadata files are."""
    return output / METADATA_FOLDER


def run_file(output: Path, run_id: str) -> Path:
    """The compacted metadata file of run ``run_id``."""
    return metadata_folder(output) / f"run-{run_id}.parquet"


def part_file(output: Path, run_id: str, number: int) -> Path:
    """Part ``number`` (from 1) of run ``run_id``, written while the run goes on."""
    return metadata_folder(output) / f"run-{run_id}.part-{number:05d}.parquet"


def write_table(path: Path, table: pa.Table) -> None:
    """Write ``table`` as one Parquet file, atomically, under a temporary name no reader matches."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMPORARY_SUFFIX)
    os.close(handle)
    try:
        pq.write_table(table, temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def write_rows(path: Path, rows: Iterable[Record]) -> None:
    """Write ``rows`` as one Parquet file with :data:`METADATA_SCHEMA`, atomically."""
    write_table(path, pa.Table.from_pylist(list(rows), schema=METADATA_SCHEMA))


def metadata_files(output: Path) -> list[Path]:
    """Every run and part file of ``output``, sorted by name (so by run start time)."""
    return sorted(metadata_folder(output).glob(RUN_FILE_GLOB))


def read_table(output: Path, columns: Sequence[str] | None = None) -> tuple[pa.Table, list[tuple[Path, str]]]:
    """``columns`` (default: all) of every metadata file in ``output``, in the current schema.

    A column a file lacks (an older schema version) reads as null. Returns (table, unreadable),
    where ``unreadable`` lists (file, reason) for files that cannot be read; their rows are left
    out, so a rerun redoes those rows rather than trusting them.
    """
    schema = METADATA_SCHEMA if columns is None else pa.schema([METADATA_SCHEMA.field(name) for name in columns])
    tables, unreadable = [], []
    for path in metadata_files(output):
        try:
            tables.append(ds.dataset(path, format="parquet", schema=schema).to_table())
        except (OSError, pa.ArrowException) as error:
            unreadable.append((path, " ".join(str(error).split())))
    return (pa.concat_tables(tables) if tables else schema.empty_table()), unreadable


def latest_rows(table: pa.Table) -> pa.Table:
    """The last row of each id in ``table``'s order (files sorted by name, rows in file order)."""
    numbered = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    last = numbered.group_by("id", use_threads=False).aggregate([("_row", "max")])["_row_max"]
    return table.take(pc.take(last, pc.sort_indices(last)))


class MetadataWriter:
    """Writes a run's rows as part files, then one compacted file (module docstring).

    Raises :class:`JobError` when a file cannot be written (a full disk, no permission); the
    files written before stay as they were.
    """

    def __init__(self, output: Path, run_id: str, *, flush_seconds: float = 5.0) -> None:
        self.path = run_file(output, run_id)
        self._output, self._run_id = output, run_id
        self._pending: list[pa.Table] = []
        self._parts: list[Path] = []
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

    def close(self) -> None:
        """Flush, then compact the run's parts into :attr:`path` and remove them."""
        self.flush()
        if not self._parts:
            self._write(self.path, METADATA_SCHEMA.empty_table())
            return
        self._write(self.path, pa.concat_tables(pq.read_table(path, schema=METADATA_SCHEMA)
                                                for path in self._parts))
        for path in self._parts:
            path.unlink()
        self._parts = []

    def _write(self, path: Path, table: pa.Table) -> None:
        try:
            write_table(path, table)
        except OSError as error:
            raise JobError(f"cannot write the metadata file {path} ({one_line(error)}); the rows written "
                           f"before are kept in {path.parent}, and a rerun renders the rest.") from None


class OutputLock:
    """An exclusive lock on an output folder, held by one live run at a time.

    ``fcntl.flock`` on ``OUTPUT/.lock``: the kernel drops it when the holding process ends, however
    it ends, so a run killed outright never leaves the folder locked. The file names the holder
    (host, pid, run id) for the refusal's message. On network file systems flock is only as good
    as the file system's locking (NFS v4 and Lustre honour it; some FUSE mounts do not).
    """

    def __init__(self, output: Path, run_id: str) -> None:
        self._path = output / LOCK_FILE
        self._run_id = run_id
        self._file = None

    def __enter__(self) -> OutputLock:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115  (held open for the run)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise JobError(f"the output folder {self._path.parent} is in use by a run that is still going "
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
