"""What a run renders, and why: the manifest against the output's state (:mod:`ray_jobs.state`).

A row is done, and skipped, when the image its id has was rendered from the same fingerprint
(:mod:`ray_jobs.fingerprint`: the SHA-256 of each input, the configuration hash, the weights
identity, the render version) and is still the image recorded. Both are decided without reading
what did not change:

- **Inputs**: each distinct input file's listing identity (:mod:`ray_jobs.listing`) is compared
  with the one the files cache recorded beside its SHA-256; only new files and files whose size or
  time differ are read and hashed (each once, in parallel), so a rerun over unchanged inputs reads
  none of their bytes. A file touched without a change of bytes is hashed, found equal, and its
  rows are not rendered. ``rehash`` hashes every input: the answer to bytes changed with their
  size and time restored, which no listing can see.
- **Images**: one listing of ``OUTPUT/images/`` gives each image's size and time; an image whose
  size differs from the recorded one is altered, one whose time is the recorded one is intact, and
  one whose time is new or not yet recorded (rendered by the last run, or an output from before the
  state) is verified once as before (:func:`ray_jobs.outputs.images_intact`: hashed locally, its
  ETag asked for in a store) and its time recorded.

**Who hashes.** The driver hashes the new and changed files (threads, each file once) before it
plans, rather than the worker that reads the file to render it anyway. A worker's hash would save
reading a changed file twice, but a touched style photo shared by 100,000 rows would then send every
one of those rows to an actor only to be found unchanged, ``--plan`` could not say what a run
renders without the same reads, and the rows to render would not be known before actors are asked
for. The driver's reads are the changed files' own bytes and nothing else
(``benchmarks/nightly_scale.py`` counts them).

Every row not done has one reason (:data:`REASONS`, the first that applies in that order). The
manifest, the listings, the fingerprints and the state stay Arrow columns; a row becomes Python
objects only when it is handed to a worker (:meth:`Plan.tasks`).
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ray_jobs.fingerprint import FINGERPRINT_COLUMNS, Fingerprint, hash_files, weights_identity
from ray_jobs.listing import identities, list_folder
from ray_jobs.manifest import Manifest, ManifestEntry
from ray_jobs.metadata import value_counts
from ray_jobs.manifest_format import PATH_COLUMNS
from ray_jobs.outputs import IMAGES_FOLDER, images_intact
from ray_jobs.state import FILES_SCHEMA, IMAGE_COLUMNS, OutputState
from stylecore.render_version import RENDER_VERSION
from stylecore.storage import join, write_bytes

REASONS = {
    "forced": "--force",
    "new": "new",
    "failed_last_time": "failed last time",
    "photo_changed": "photo changed",
    "mask_changed": "mask changed",
    "config_changed": "configuration changed",
    "weights_changed": "weights changed",
    "render_version_changed": "render version changed",
    "image_missing": "image missing",
    "image_altered": "image altered",
}
"""Why a row is rendered: its code (the ``reason`` column of ``--plan-output``) and how the console
says it, in the order in which they are tried."""
PLAN_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("reason", pa.string(), nullable=False),
                         *(pa.field(name, pa.string()) for name in PATH_COLUMNS)])
"""The rows ``--plan-output`` writes: each row a run would render, its reason and its inputs."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """The rows of a manifest to render and their reasons; what the inputs and images were found to be."""

    manifest: Manifest
    fingerprints: pa.Table
    """One row per manifest row: its :class:`~ray_jobs.fingerprint.Fingerprint` as columns."""
    render: pa.Array
    """Positions in :attr:`manifest` of the rows to render, in manifest order."""
    reasons: pa.Array
    """The reason code (:data:`REASONS`) of each row in :attr:`render`."""
    files: pa.Table
    """Every input file of the manifest as found now (:data:`ray_jobs.state.FILES_SCHEMA`)."""
    image_identities: pa.Table
    """``id`` and ``output_mtime_ns`` of the images verified intact by this plan."""
    hashed_files: int
    hashed_bytes: int

    @property
    def skipped(self) -> int:
        return len(self.manifest) - len(self.render)

    def counts(self) -> dict[str, int]:
        """Rows to render by reason code, in :data:`REASONS` order, only reasons that occur."""
        found = value_counts(self.reasons)
        return {code: found[code] for code in REASONS if code in found}

    def describe(self) -> str:
        """The counts by reason as the console says them: ``new 3, photo changed 2``."""
        return ", ".join(f"{REASONS[code]} {count}" for code, count in self.counts().items())

    def table(self) -> pa.Table:
        """The rows to render with their reasons and inputs (:data:`PLAN_SCHEMA`)."""
        rows = self.manifest.table.take(self.render)
        return pa.table({"id": rows["id"], "reason": self.reasons,
                         **{name: rows[name].cast(pa.string()) for name in PATH_COLUMNS}}, schema=PLAN_SCHEMA)

    def entries(self) -> Iterator[tuple[ManifestEntry, Fingerprint]]:
        """Each row to render as the objects a worker is handed, made one at a time."""
        prints = self.fingerprints.take(self.render)
        for index, position in enumerate(self.render.to_pylist()):
            values = prints.slice(index, 1).to_pylist()[0]
            yield self.manifest[position], Fingerprint(**values)


def make_plan(manifest: Manifest, state: OutputState, *, output: str, weights_of: Callable[[str], str | None],
              force: bool = False, rehash: bool = False) -> Plan:
    """The plan of a run of ``manifest`` into ``output``, whose state is ``state`` (module docstring).

    ``weights_of(extractor)`` is the ``--weights`` value that rows of ``extractor`` load; ``force``
    renders every row (reason ``forced``); ``rehash`` hashes every input file.
    """
    files, hashed = _input_files(manifest, state.files, rehash=rehash)
    prints = _fingerprints(manifest, files, weights_of)
    previous = _Previous(state.rows, pc.index_in(manifest.table["id"], state.rows["id"]))
    changes = {code: _differs(prints, previous, names) for code, names in _FINGERPRINT_REASONS.items()}
    has_image = _mask(pc.is_valid(previous["output_sha256"]))
    candidate = has_image & ~np.logical_or.reduce(list(changes.values()))
    if force:
        candidate[:] = False
    missing, altered, verified = _image_check(previous, candidate, output=output)
    conditions = {
        "forced": np.full(len(manifest), force),
        "new": _mask(pc.is_null(previous.position)),
        "failed_last_time": _mask(pc.equal(previous["status"], "error")),
        **{code: has_image & changed for code, changed in changes.items()},
        "image_missing": missing, "image_altered": altered,
    }
    positions = np.flatnonzero(~candidate | missing | altered)
    codes = np.select([conditions[code][positions] for code in REASONS], list(REASONS), default="new")
    hashed_sizes = hashed["size"].to_numpy(zero_copy_only=False) if hashed.num_rows else np.zeros(0)
    return Plan(manifest=manifest, fingerprints=prints, render=pa.array(positions, pa.int64()),
                reasons=pa.array(codes, pa.string()), files=files, image_identities=verified,
                hashed_files=hashed.num_rows, hashed_bytes=int(hashed_sizes.sum()))


@dataclasses.dataclass(frozen=True)
class _Previous:
    """The state row of each manifest row (null where the id is new), one column at a time: a
    million rows of every column at once would be hundreds of MB the plan never needs together."""

    rows: pa.Table
    position: pa.Array
    """Position in :attr:`rows` of each manifest row's id, null when it has none."""

    def __getitem__(self, name: str) -> pa.Array:
        return pc.take(self.rows[name], self.position)

    def take(self, names: Sequence[str], indices: np.ndarray) -> pa.Table:
        """The columns ``names`` of the manifest rows at ``indices``."""
        positions = pc.take(self.position, pa.array(indices, pa.int64()))
        return pa.table({name: pc.take(self.rows[name], positions) for name in names})


_VERIFY_BATCH = 10_000
"""Images verified at a time (:func:`_image_check`): each is a Python dict while it is checked."""
_FINGERPRINT_REASONS = {
    "photo_changed": ("content_sha256", "style_sha256"),
    "mask_changed": ("content_mask_sha256", "style_mask_sha256"),
    "config_changed": ("config_hash",),
    "weights_changed": ("extractor_weights_sha256",),
    "render_version_changed": ("render_version",),
}
"""The fingerprint columns whose change each reason names."""


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as a NumPy mask, null as False."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool)


def _differs(now: pa.Table, before: _Previous, names: tuple[str, ...]) -> np.ndarray:
    """Rows where any of the columns ``names`` differs between ``now`` and ``before`` (null equals null)."""
    differs = np.zeros(now.num_rows, bool)
    for name in names:
        a, b = now[name], before[name]
        same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
        differs |= ~_mask(same)
    return differs


def _input_files(manifest: Manifest, cache: pa.Table, *, rehash: bool) -> tuple[pa.Table, pa.Table]:
    """Every distinct input file of ``manifest`` with its listing identity and SHA-256
    (:data:`~ray_jobs.state.FILES_SCHEMA`; null for absent files), and the ones hashed now."""
    paths = pa.chunked_array([chunk for name in PATH_COLUMNS for chunk in manifest.table[name].chunks]).drop_null()
    paths = paths.unique()
    listed = identities(paths.to_pylist())
    position = pc.index_in(listed["location"], cache["location"])
    known = _mask(pc.and_(pc.equal(listed["size"], pc.take(cache["size"], position)),
                          pc.equal(listed["mtime_ns"], pc.take(cache["mtime_ns"], position))))
    known &= _mask(pc.is_valid(pc.take(cache["sha256"], position))) & (not rehash)
    needed = np.flatnonzero(~known & _mask(pc.is_valid(listed["size"])))
    locations = listed["location"].to_pylist()
    hashes = hash_files(locations[index] for index in needed)
    sha = np.array(pc.take(cache["sha256"], position).to_pylist(), dtype=object)
    sha[~known] = None
    for index in needed:
        sha[index] = hashes[locations[index]]
    files = listed.append_column(FILES_SCHEMA.field("sha256"), pa.array(sha, pa.string()))
    hashed = files.take(pa.array(needed, pa.int64()))
    hashed = hashed.filter(pc.is_valid(hashed["sha256"]))  # a file that vanished while listed
    return files, hashed


def _fingerprints(manifest: Manifest, files: pa.Table, weights_of: Callable[[str], str | None]) -> pa.Table:
    """Each manifest row's fingerprint, as :data:`~ray_jobs.fingerprint.FINGERPRINT_COLUMNS`."""
    hashes = pc.fill_null(files["sha256"], "")
    columns = {}
    for name in PATH_COLUMNS:  # indices into the files' hashes: 4 bytes a row, not 64
        file = pc.index_in(manifest.table[name], files["location"])
        known = pc.is_valid(pc.take(files["sha256"], file))
        indices = pc.if_else(known, file, None).combine_chunks().cast(pa.int32())
        columns[f"{name}_sha256"] = pa.DictionaryArray.from_arrays(indices, hashes)
    columns["config_hash"] = manifest.config_column(lambda config: config.config_hash(), pa.string())
    extractors = {config.extractor for config in manifest.configs}
    weights = {name: weights_identity(name, weights_of(name)) for name in extractors}
    columns["extractor_weights_sha256"] = manifest.config_column(lambda config: weights[config.extractor], pa.string())
    columns["render_version"] = pa.array(np.full(len(manifest), RENDER_VERSION, np.int32))
    return pa.table({name: columns[name] for name in FINGERPRINT_COLUMNS})


def _image_check(previous: _Previous, candidate: np.ndarray, *,
                 output: str) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """For the ``candidate`` rows (same fingerprint, an image recorded): which images are missing,
    which altered, and the listing identities of those verified intact now (module docstring)."""
    missing, altered = np.zeros(len(candidate), bool), np.zeros(len(candidate), bool)
    none_verified = pa.table({"id": pa.array([], pa.string()), "output_mtime_ns": pa.array([], pa.int64())})
    rows = np.flatnonzero(candidate)
    if not rows.size:
        return missing, altered, none_verified
    recorded = previous.take(("id", "output_path", "output_bytes", "output_mtime_ns"), rows)
    listing = list_folder(join(output, IMAGES_FOLDER))
    names = pc.utf8_replace_slice(recorded["output_path"], 0, len(IMAGES_FOLDER) + 1, "")
    in_folder = _mask(pc.starts_with(recorded["output_path"], f"{IMAGES_FOLDER}/"))
    found = pc.index_in(names, listing["name"])
    size, mtime = pc.take(listing["size"], found), pc.take(listing["mtime_ns"], found)
    present = in_folder & _mask(pc.is_valid(found))
    same_size = _mask(pc.equal(size, recorded["output_bytes"]))
    same_time = _mask(pc.equal(mtime, recorded["output_mtime_ns"]))
    check = np.flatnonzero(present & same_size & ~same_time)
    intact = present & same_size & same_time
    for start in range(0, check.size, _VERIFY_BATCH):
        batch = check[start:start + _VERIFY_BATCH]
        intact[batch] = images_intact(output, previous.take(IMAGE_COLUMNS, rows[batch]).to_pylist())
    missing[rows] = ~present
    altered[rows] = present & ~intact
    confirmed = pa.array(check[intact[check]], pa.int64())
    verified = pa.table({"id": pc.take(recorded["id"], confirmed).cast(pa.string()),
                         "output_mtime_ns": pc.take(mtime, confirmed)})
    return missing, altered, verified


def write_plan(plan: Plan, location: str) -> None:
    """Write :meth:`Plan.table` to ``location`` (a path or URI) as Parquet or CSV, by its suffix."""
    buffer = io.BytesIO()
    if plan_file_format(location) == "parquet":
        pq.write_table(plan.table(), buffer)
    else:
        pa_csv.write_csv(plan.table(), buffer)
    write_bytes(location, buffer.getvalue())


def plan_file_format(location: str) -> str:
    """``parquet`` or ``csv``, by ``location``'s suffix; ``ValueError`` in one sentence for another."""
    suffix = posixpath.splitext(location)[1].lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"--plan-output {location}: give a file ending in .parquet or .csv.")
    return suffix[1:]
