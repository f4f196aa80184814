"""Which rows an earlier run already finished, so that a rerun renders only the rest.

A row is done when its latest earlier metadata row that rendered an image (status ``ok``, or
``skipped``, a copy of an ok one)

- has the same fingerprint: the SHA-256 of each input file, the configuration hash, the weights
  identity and the render version (:mod:`ray_jobs.fingerprint`), and
- names an output image that still exists with the SHA-256 recorded for it (in an object store:
  with the size and entity tag recorded for it, so nothing is downloaded; :mod:`ray_jobs.outputs`).

Anything else is redone: failed rows, rows whose photo, mask, configuration, weights or rendering
code changed, rows whose image was deleted, overwritten, or left torn by a crash. Only the latest
such row per id can match: every render of an id writes the same file, ``images/<id>.png``.

Scale: the earlier rows are read with only the columns this check needs and reduced to the latest
per id with pyarrow; the full columns of the done rows (copied into this run's ``skipped`` rows)
are taken from the same files only for those rows, and stay Arrow tables throughout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from ray_jobs.fingerprint import Fingerprint
from ray_jobs.metadata import latest_rows, read_table
from ray_jobs.outputs import images_intact
from ray_jobs.schema import METADATA_SCHEMA, SCHEMA_VERSION

DONE_STATUSES = ("ok", "skipped")
FINGERPRINT_COLUMNS = tuple(field.name for field in dataclasses.fields(Fingerprint))
_IMAGE_COLUMNS = ("output_path", "output_sha256", "output_bytes", "output_etag")
_CHECK_COLUMNS = ("id", "status", *_IMAGE_COLUMNS, *FINGERPRINT_COLUMNS)


@dataclasses.dataclass(frozen=True)
class EarlierRuns:
    """What the earlier runs in an output folder already did."""

    done: pa.Table
    """The latest rendering row of each done id, every column of :data:`METADATA_SCHEMA`."""
    unreadable: list[tuple[str, str]]
    """(file, reason) of metadata files that could not be read; their rows count as not done."""

    @property
    def ids(self) -> set[str]:
        return set(self.done["id"].to_pylist())


def done_rows(fingerprints: Mapping[str, Fingerprint], *, output: str) -> EarlierRuns:
    """The rows of ``fingerprints`` (this run's, by id) that earlier runs in ``output`` did (module docstring)."""
    positions, unreadable = _done_positions(fingerprints, output=output)
    if not len(positions):
        return EarlierRuns(METADATA_SCHEMA.empty_table(), unreadable)
    full, _ = read_table(output)
    return EarlierRuns(_rendering_rows(full).take(positions), unreadable)


def _done_positions(fingerprints: Mapping[str, Fingerprint], *,
                    output: str) -> tuple[pa.Array, list[tuple[str, str]]]:
    """Where the done rows are among the rendering rows of ``output``'s metadata files, in file order.

    Reads only :data:`_CHECK_COLUMNS`; its tables are freed before the caller reads every column.
    """
    table, unreadable = read_table(output, _CHECK_COLUMNS)
    rendered = _rendering_rows(table)
    latest = latest_rows(rendered.append_column("_position", pa.array(range(rendered.num_rows), pa.int64())))
    candidates = latest.join(_fingerprint_table(fingerprints), keys="id", right_suffix="_now", use_threads=False)
    same = pa.array([True] * candidates.num_rows, pa.bool_())
    for name in FINGERPRINT_COLUMNS:
        before, now = candidates[name], candidates[f"{name}_now"]
        same = pc.and_(same, pc.or_(pc.fill_null(pc.equal(before, now), False),
                                    pc.and_(pc.is_null(before), pc.is_null(now))))
    candidates = candidates.filter(same)
    intact = images_intact(output, candidates.select(_IMAGE_COLUMNS).to_pylist())
    return candidates.filter(pa.array(intact, pa.bool_()))["_position"].combine_chunks(), unreadable


def _fingerprint_table(fingerprints: Mapping[str, Fingerprint]) -> pa.Table:
    """This run's ids and fingerprints as columns typed as in :data:`METADATA_SCHEMA`."""
    values = list(fingerprints.values())
    columns = {"id": pa.array(list(fingerprints), pa.string())}
    for name in FINGERPRINT_COLUMNS:
        columns[f"{name}_now"] = pa.array([getattr(value, name) for value in values],
                                          METADATA_SCHEMA.field(name).type)
    return pa.table(columns)


def skipped_rows(done: pa.Table, *, run_id: str) -> pa.Table:
    """``done``'s rows as this run's ``skipped`` rows: every column copied, with this run's id and status."""
    count = done.num_rows
    replaced = {"schema_version": pa.array([SCHEMA_VERSION] * count, pa.int32()),
                "run_id": pa.array([run_id] * count, pa.string()),
                "status": pa.array(["skipped"] * count, pa.string())}
    for name, values in replaced.items():
        done = done.set_column(done.schema.get_field_index(name), METADATA_SCHEMA.field(name), values)
    return done



def _rendering_rows(table: pa.Table) -> pa.Table:
    """The rows that rendered an image: status ok or skipped, with an output path and hash."""
    return table.filter(pc.and_(pc.is_in(table["status"], pa.array(DONE_STATUSES)),
                                pc.and_(pc.is_valid(table["output_path"]), pc.is_valid(table["output_sha256"]))))
