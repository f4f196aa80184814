"""The current state of an output: one row per id, which a rerun reads instead of the run history.

``OUTPUT/metadata/`` is the history (every row of every run, :mod:`ray_jobs.metadata`); a rerun
needs only what is true now, so the output also keeps, under ``OUTPUT/state/``:

- ``rows.parquet`` (:data:`ROWS_SCHEMA`): per id, its latest attempt (status, run, error) and the
  image it has (the fingerprint it was rendered from, the image's SHA-256, size, ETag and, once a
  rerun has seen it intact, its listing identity), with the image's metrics;
- ``files.parquet`` (:data:`FILES_SCHEMA`): per input file seen, its listing identity and the
  SHA-256 computed when it had that identity (:mod:`ray_jobs.listing`), so that a rerun hashes
  only new and changed files.

Each is one Parquet file replaced whole (a local file written beside its name and renamed; an
object put in one upload), so a crash leaves the old state or the new, never a torn one. Why a
compacted Parquet file and not a table format (Delta Lake, Iceberg): ``docs/state-format.md``.

**The state and the history agree by folding.** The rows file lists, in its Parquet metadata, the
names of the metadata files it has folded in. A run writes its rows to the history as it goes
(part files every few seconds) and folds them into the state once, at its end; a rerun folds
every history file the state does not list yet, such as the parts a killed run left, so a crash
loses at most the rows since the last part file, as before. A run that changed nothing (no row
rendered, nothing verified or hashed) leaves the state as it was.

**Upgrade and repair.** An output without a state (written before the state existed) gets one
built from its whole history the first time a run reads it, with no row rendered again; a state
file that cannot be read is refused in one sentence naming ``--rebuild-state``, which builds it
anew from the history the same way. The files cache is only a cache: lost or damaged, it is
rebuilt by hashing the inputs once.
"""

from __future__ import annotations

import dataclasses
import io
import json
import posixpath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_jobs.errors import JobError, one_line
from ray_jobs.fingerprint import FINGERPRINT_COLUMNS
from ray_jobs.listing import IDENTITY_SCHEMA
from ray_jobs.metadata import latest_rows, metadata_files, read_files, value_counts
from ray_jobs.schema import METADATA_SCHEMA, metric_column
from stylecore.errors import StorageError
from stylecore.metrics import METRIC_NAMES
from stylecore.storage import exists, join, read_bytes, resolve, write_bytes

STATE_FOLDER = "state"
ROWS_FILE = "rows.parquet"
FILES_FILE = "files.parquet"
FOLDED_KEY = b"folded"
"""Key of the rows file's Parquet metadata listing the history files folded in (a JSON list of names)."""
DONE_STATUSES = ("ok", "skipped")
"""History statuses whose row has an image (``skipped``: a copy of an ok row, written by versions
before the state existed)."""
IMAGE_COLUMNS = ("output_path", "output_sha256", "output_bytes", "output_etag")
_ATTEMPT_COLUMNS = ("id", "status", "run_id", "error_type", "error_message")
OUTPUT_METRICS = tuple(metric_column("output", metric) for metric in METRIC_NAMES)
_IMAGE_STATE_COLUMNS = (*FINGERPRINT_COLUMNS, *IMAGE_COLUMNS, *OUTPUT_METRICS)
HISTORY_COLUMNS = (*_ATTEMPT_COLUMNS, *_IMAGE_STATE_COLUMNS)
"""The history columns the state is made of."""


def _history_field(name: str) -> pa.Field:
    """The metadata column ``name``, nullable: an id that failed has no image, hence no fingerprint of one."""
    return METADATA_SCHEMA.field(name).with_nullable(name != "id")


ROWS_SCHEMA = pa.schema([
    *map(_history_field, _ATTEMPT_COLUMNS),
    *map(_history_field, _IMAGE_STATE_COLUMNS),
    pa.field("output_mtime_ns", pa.int64(), metadata={"doc": "the image's modification time (ns) as its folder's "
             "listing gave it when a rerun last found it intact; null until then"}),
])
"""Per id: its latest attempt (``status`` ok or error, ``run_id``, the error) and the image it has
(null when it has none): the fingerprint the image was rendered from, the image's identity and its
metrics, as in :data:`ray_jobs.schema.METADATA_SCHEMA`."""
_REPEATED_COLUMNS = ("status", "run_id", "error_type", "error_message", "content_sha256", "style_sha256",
                     "content_mask_sha256", "style_mask_sha256", "config_hash", "extractor_weights_sha256",
                     "output_etag")
"""Columns whose values repeat over many ids (a style photo's hash, a run id): read as dictionary
arrays, a few bytes a row instead of a string each (a million rows' state holds about 100 MB, not 400)."""
_DICTIONARY_PAGE_BYTES = 80 * 2**20
FILES_SCHEMA = pa.schema([*IDENTITY_SCHEMA, pa.field("sha256", pa.string())])
"""Per input file: its listing identity and the SHA-256 of its bytes when it had that identity."""


@dataclasses.dataclass(frozen=True)
class OutputState:
    """What an output holds now (module docstring)."""

    rows: pa.Table
    """:data:`ROWS_SCHEMA`, one row per id."""
    files: pa.Table
    """:data:`FILES_SCHEMA`, one row per input file seen."""
    folded: frozenset[str]
    """Names of the history files folded into :attr:`rows`."""
    changed: bool = False
    """True when :attr:`rows` or :attr:`files` differ from what is stored (a fold, a rebuild)."""
    unreadable: tuple[tuple[str, str], ...] = ()
    """(file, reason) of history files that could not be read while folding; their rows count as not done."""


def state_file(output: str, name: str) -> str:
    return join(join(output, STATE_FOLDER), name)


def empty_state() -> OutputState:
    return OutputState(ROWS_SCHEMA.empty_table(), FILES_SCHEMA.empty_table(), frozenset())


def load_state(output: str, *, rebuild: bool = False) -> OutputState:
    """The state of ``output`` with every history file it has not folded in yet folded in.

    Built from the whole history when the output has none yet, or when ``rebuild``. Raises
    :class:`JobError` when the rows file exists but cannot be read.
    """
    rows_path = state_file(output, ROWS_FILE)
    if rebuild or not exists(rows_path):
        stored = dataclasses.replace(empty_state(), changed=True)
    else:
        rows, folded = _read_rows(rows_path)
        stored = OutputState(rows=rows, files=_read_files(state_file(output, FILES_FILE)), folded=folded)
    return fold_history(output, stored)


def _read_rows(path: str) -> tuple[pa.Table, frozenset[str]]:
    try:
        filesystem, within = resolve(path)
        with filesystem.open_input_file(within) as file:
            # In place, a column at a time: decoding a million rows' columns at once took 300 MB more.
            parquet = pq.ParquetFile(file, read_dictionary=_REPEATED_COLUMNS)
            table = pa.table({name: parquet.read([name])[name] for name in parquet.schema_arrow.names},
                             metadata=parquet.schema_arrow.metadata)
        folded = frozenset(json.loads((table.schema.metadata or {})[FOLDED_KEY]))
        missing = set(ROWS_SCHEMA.names) - set(table.column_names)
        if missing:
            raise ValueError(f"no column {', '.join(sorted(missing))}")
        return table.select(ROWS_SCHEMA.names).unify_dictionaries().combine_chunks(), folded
    except (OSError, StorageError, pa.ArrowException, KeyError, ValueError) as error:
        raise JobError(f"the state table {path} cannot be read ({one_line(error)}); rerun with --rebuild-state "
                       "to rebuild it from the run history, which loses nothing.") from None


def _read_files(path: str) -> pa.Table:
    """The files cache; empty when absent or unreadable, as it is only a cache of hashes."""
    try:
        return pq.read_table(pa.BufferReader(read_bytes(path))).select(FILES_SCHEMA.names).cast(FILES_SCHEMA)
    except (OSError, StorageError, pa.ArrowException, KeyError, ValueError):
        return FILES_SCHEMA.empty_table()


def fold_history(output: str, state: OutputState) -> OutputState:
    """``state`` with the history files of ``output`` it has not folded in yet folded in, in name order."""
    names = {posixpath.basename(path): path for path in metadata_files(output)}
    new = sorted(name for name in names if name not in state.folded)
    if not new:
        return state
    history, unreadable = read_files([names[name] for name in new], HISTORY_COLUMNS)
    bad = {posixpath.basename(path) for path, _ in unreadable}
    # Files without rows (a night that rendered nothing) change nothing: they are listed as folded the
    # next time the state is written, and until then read again, a footer each.
    return dataclasses.replace(state, rows=fold(state.rows, history), changed=state.changed or history.num_rows > 0,
                               folded=state.folded | {name for name in new if name not in bad},
                               unreadable=state.unreadable + tuple(unreadable))


def fold(rows: pa.Table, history: pa.Table) -> pa.Table:
    """The state ``rows`` (:data:`ROWS_SCHEMA`) updated by ``history`` rows (:data:`HISTORY_COLUMNS`)
    in the order they were written: each id's latest attempt, and its latest image."""
    if history.num_rows == 0:
        return rows
    rows = rows.cast(ROWS_SCHEMA)  # dictionary columns as read (_read_rows) back to plain strings
    status = history["status"]
    history = history.set_column(history.schema.get_field_index("status"), "status",
                                 pc.if_else(pc.equal(status, "skipped"), "ok", status))
    rendered = history.filter(pc.and_(pc.is_in(history["status"], pa.array(DONE_STATUSES)),
                                      pc.and_(pc.is_valid(history["output_path"]),
                                              pc.is_valid(history["output_sha256"]))))
    attempts = latest_rows(pa.concat_tables([rows.select(_ATTEMPT_COLUMNS), history.select(_ATTEMPT_COLUMNS)],
                                           promote_options="permissive"))
    image_columns = ["id", *_IMAGE_STATE_COLUMNS, "output_mtime_ns"]
    new_images = rendered.select(["id", *_IMAGE_STATE_COLUMNS]).append_column(
        "output_mtime_ns", pa.nulls(rendered.num_rows, pa.int64()))
    images = latest_rows(pa.concat_tables([rows.filter(pc.is_valid(rows["output_sha256"])).select(image_columns),
                                           new_images], promote_options="permissive"))
    joined = attempts.join(images, keys="id", join_type="left outer", use_threads=False)
    return joined.sort_by("id").select(ROWS_SCHEMA.names).cast(ROWS_SCHEMA)


def with_image_identities(rows: pa.Table, identities: pa.Table) -> pa.Table:
    """``rows`` with ``output_mtime_ns`` set from ``identities`` (columns ``id``, ``output_mtime_ns``)
    for the ids in it: images a rerun found intact."""
    if identities.num_rows == 0:
        return rows
    position = pc.index_in(rows["id"], identities["id"])
    found = pc.take(identities["output_mtime_ns"], position)
    column = pc.if_else(pc.is_valid(position), found, rows["output_mtime_ns"])
    return rows.set_column(rows.schema.get_field_index("output_mtime_ns"), ROWS_SCHEMA.field("output_mtime_ns"),
                           column)


def merged_files(cached: pa.Table, seen: pa.Table) -> pa.Table:
    """The files cache ``cached`` with the entries of ``seen`` (:data:`FILES_SCHEMA`) put in their place."""
    kept = cached.filter(pc.invert(pc.is_in(cached["location"], seen["location"])))
    return pa.concat_tables([kept, seen.select(FILES_SCHEMA.names).cast(FILES_SCHEMA)])


def state_counts(rows: pa.Table) -> dict[str, int]:
    """The output's ids counted from its state ``rows``: ``rows``, ``ok`` (an image is there from its
    latest attempt) and ``error`` (its latest attempt failed)."""
    statuses = value_counts(rows["status"])
    return {"rows": rows.num_rows, "ok": statuses.get("ok", 0), "error": statuses.get("error", 0)}


def write_state(output: str, state: OutputState) -> None:
    """Replace the state files of ``output`` with ``state``, each whole or not at all (module docstring).

    The files cache is written first: a crash between the two leaves the old rows with a newer
    cache, which only records true hashes.
    """
    _write(state_file(output, FILES_FILE), state.files)
    metadata = {FOLDED_KEY: json.dumps(sorted(state.folded)).encode()}
    _write(state_file(output, ROWS_FILE), state.rows.replace_schema_metadata(metadata))


def _write(path: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    # A dictionary page big enough for the hashes of 1,000,000 distinct files (Parquet's default of
    # 1 MiB would fall back to plain strings past 16,000), so the repeated columns stay dictionaries.
    pq.write_table(table, buffer, dictionary_pagesize_limit=_DICTIONARY_PAGE_BYTES)
    write_bytes(path, buffer.getvalue())
