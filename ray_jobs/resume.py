"""Which rows an earlier run already finished, so that a rerun renders only the rest.

A row is done when its latest earlier metadata row that rendered an image (status ``ok``, or
``skipped``, a copy of an ok one)

- has the same fingerprint: the SHA-256 of each input file, the configuration hash, the weights
  identity and the render version (:mod:`ray_jobs.fingerprint`), and
- names an output image that still exists with the SHA-256 recorded for it.

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
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ray_jobs.fingerprint import Fingerprint, hash_files
from ray_jobs.metadata import latest_rows, read_table
from ray_jobs.schema import METADATA_SCHEMA, SCHEMA_VERSION

DONE_STATUSES = ("ok", "skipped")
FINGERPRINT_COLUMNS = tuple(field.name for field in dataclasses.fields(Fingerprint))
_CHECK_COLUMNS = ("id", "status", "output_path", "output_sha256", *FINGERPRINT_COLUMNS)


@dataclasses.dataclass(frozen=True)
class EarlierRuns:
    """What the earlier runs in an output folder already did."""

    done: pa.Table
    """The latest rendering row of each done id, every column of :data:`METADATA_SCHEMA`."""
    unreadable: list[tuple[Path, str]]
    """(file, reason) of metadata files that could not be read; their rows count as not done."""

    @property
    def ids(self) -> set[str]:
        return set(self.done["id"].to_pylist())


def done_rows(fingerprints: Mapping[str, Fingerprint], *, output: Path) -> EarlierRuns:
    """The rows of ``fingerprints`` (this run's, by id) that earlier runs in ``output`` did (module docstring)."""
    table, unreadable = read_table(output, _CHECK_COLUMNS)
    rendered = _rendering_rows(table)
    rendered = rendered.append_column("_position", pa.array(range(rendered.num_rows), pa.int64()))
    latest = latest_rows(rendered)
    wanted = [_matches(row, fingerprints) for row in latest.select(["id", *FINGERPRINT_COLUMNS]).to_pylist()]
    candidates = latest.filter(pa.array(wanted, pa.bool_()))
    image_hashes = hash_files(output / path for path in candidates["output_path"].to_pylist())
    intact = [image_hashes[output / path] == digest for path, digest in
              zip(candidates["output_path"].to_pylist(), candidates["output_sha256"].to_pylist(), strict=True)]
    positions = candidates.filter(pa.array(intact, pa.bool_()))["_position"]
    if not len(positions):
        return EarlierRuns(METADATA_SCHEMA.empty_table(), unreadable)
    full, _ = read_table(output)
    return EarlierRuns(_rendering_rows(full).take(positions), unreadable)


def _rendering_rows(table: pa.Table) -> pa.Table:
    """The rows that rendered an image: status ok or skipped, with an output path and hash."""
    return table.filter(pc.and_(pc.is_in(table["status"], pa.array(DONE_STATUSES)),
                                pc.and_(pc.is_valid(table["output_path"]), pc.is_valid(table["output_sha256"]))))


def skipped_rows(done: pa.Table, *, run_id: str) -> pa.Table:
    """``done``'s rows as this run's ``skipped`` rows: every column copied, with this run's id and status."""
    count = done.num_rows
    replaced = {"schema_version": pa.array([SCHEMA_VERSION] * count, pa.int32()),
                "run_id": pa.array([run_id] * count, pa.string()),
                "status": pa.array(["skipped"] * count, pa.string())}
    for name, values in replaced.items():
        done = done.set_column(done.schema.get_field_index(name), METADATA_SCHEMA.field(name), values)
    return done


def _matches(row: dict, fingerprints: Mapping[str, Fingerprint]) -> bool:
    current = fingerprints.get(row["id"])
    return current is not None and all(row[name] == getattr(current, name) for name in FINGERPRINT_COLUMNS)
