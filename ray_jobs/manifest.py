"""Manifests: the pairs a batch job renders, read from JSONL, CSV or Parquet and checked whole.

One row per item, with these columns (JSONL: the keys of one JSON object per line):

============== ======== =====================================================================
column         required meaning
============== ======== =====================================================================
``id``         yes      unique name of the row: letters, digits, ``.``, ``_``, ``-``; it names
                        the output image ``OUTPUT/images/<id>.png``
``content``    yes      path of the content photo
``style``      yes      path of the style photo
``content_mask`` no     path of the content photo's segmentation mask
``style_mask`` no       path of the style photo's mask (with one mask only, the other photo's
                        segments are found from it, :mod:`stylecore.segment_matching`)
``mask_format`` no      how the row's masks are read: palette, ids or colours
                        (:mod:`stylecore.label_maps`); likewise ``ignore_label`` (a class id)
                        and ``label_groups`` (path of a group table, resolved as the photos are)
``config``     no       a JSON object of :class:`~stylecore.config.TransferConfig` fields that
                        override the job's configuration for this row only (JSONL: a nested
                        object; CSV and Parquet: JSON text)
============== ======== =====================================================================

The format follows the file's suffix: ``.jsonl`` (or ``.ndjson``), ``.csv`` (a header line, then
one line per row; an empty cell is an absent value) or ``.parquet``. The manifest and every path in
it may be a local path or an object-store URI (``s3://bucket/key``, ``gs://``, ``hdfs://``; see
:mod:`stylecore.storage`). Relative paths resolve against the data root the job is given, itself a
folder or a URI prefix; absolute paths and URIs are kept.

The whole manifest is checked before any work starts, and a problem (an unreadable file, a missing
column, an unknown column, a duplicate id, an invalid configuration override) raises
:class:`ManifestError` whose message names the line (Parquet: the row) and the problem. The photos
and masks a row names are not opened here: a missing or corrupt image is that row's own failure,
recorded as an error row while the other rows still run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import posixpath
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ray_jobs.errors import ManifestError, one_line
from ray_jobs.manifest_format import COLUMNS, FORMATS, LABEL_COLUMNS, PATH_COLUMNS, REQUIRED_COLUMNS
from stylecore.config import TransferConfig
from stylecore.errors import StorageError
from stylecore.storage import join, read_bytes

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    """One row of a manifest, its paths resolved and its configuration merged onto the job's."""

    id: str
    content: str
    """Absolute local path or URI of the content photo; likewise the other three."""
    style: str
    content_mask: str | None
    style_mask: str | None
    config: TransferConfig
    """The job's configuration with this row's ``config`` overrides applied."""
    location: str
    """Where the row is in its file, for messages: ``"line 3"`` (JSONL, CSV) or ``"row 3"`` (Parquet)."""


def read_manifest(path: str | os.PathLike[str], *, data_root: str | os.PathLike[str],
                  config: TransferConfig) -> list[ManifestEntry]:
    """Read and check a whole manifest (module docstring); relative paths resolve against ``data_root``.

    ``config`` is the job's configuration, onto which each row's overrides are merged.
    Raises :class:`ManifestError` for any problem, before any row is returned.
    """
    path = os.fspath(path)
    suffix = posixpath.splitext(path)[1]
    file_format = FORMATS.get(suffix.lower())
    if file_format is None:
        raise ManifestError(f"{path}: unknown manifest format {suffix!r}; "
                            f"use one of {', '.join(sorted(FORMATS))}.")
    entries: list[ManifestEntry] = []
    first_seen: dict[str, str] = {}
    for location, values in _raw_rows(path, file_format):
        entry = _entry(values, location=location, data_root=os.fspath(data_root), config=config,
                       where=f"{path}, {location}")
        if entry.id in first_seen:
            raise ManifestError(f"{path}, {location}: duplicate id {entry.id!r} "
                                f"(first used on {first_seen[entry.id]}).")
        first_seen[entry.id] = location
        entries.append(entry)
    if not entries:
        raise ManifestError(f"{path}: the manifest has no rows.")
    return entries


def _raw_rows(path: str, file_format: str) -> Iterator[tuple[str, dict[str, Any]]]:
    readers = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}
    try:
        yield from readers[file_format](path, read_bytes(path))
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found.") from None
    except StorageError as error:
        raise ManifestError(f"cannot read the manifest: {error}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    except (OSError, pa.ArrowException) as error:
        raise ManifestError(f"{path}: cannot read the manifest ({one_line(error)}).") from None


def _jsonl_rows(path: str, data: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    with io.StringIO(data.decode("utf-8")) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                values = json.loads(line)
            except json.JSONDecodeError as error:
                raise ManifestError(f"{path}, line {number}: not valid JSON ({error.msg} "
                                    f"at column {error.colno}).") from None
            if not isinstance(values, dict):
                raise ManifestError(f"{path}, line {number}: expected a JSON object, "
                                    f"got {type(values).__name__}.")
            yield f"line {number}", values


def _csv_rows(path: str, data: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    with io.StringIO(data.decode("utf-8"), newline="") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        for column in REQUIRED_COLUMNS:
            if column not in header:
                raise ManifestError(f"{path}, line 1: missing required column {column!r} in the header.")
        for values in reader:
            if None in values:
                raise ManifestError(f"{path}, line {reader.line_num}: more cells than header columns.")
            yield f"line {reader.line_num}", {key: value for key, value in values.items() if value != ""}


def _parquet_rows(path: str, data: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    table = pq.read_table(pa.BufferReader(data))
    for column in REQUIRED_COLUMNS:
        if column not in table.column_names:
            raise ManifestError(f"{path}: missing required column {column!r}.")
    for number, values in enumerate(table.to_pylist(), start=1):
        yield f"row {number}", {key: value for key, value in values.items() if value not in (None, "")}


def _entry(values: Mapping[str, Any], *, location: str, data_root: str, config: TransferConfig,
           where: str) -> ManifestEntry:
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        raise ManifestError(f"{where}: unknown column(s) {', '.join(unknown)}; "
                            f"the columns are {', '.join(COLUMNS)}.")
    for column in REQUIRED_COLUMNS:
        if column not in values:
            raise ManifestError(f"{where}: missing required column {column!r}.")
    row_id = values["id"]
    if not isinstance(row_id, str) or not _ID_PATTERN.fullmatch(row_id):
        raise ManifestError(f"{where}: id {row_id!r} must be text of letters, digits, '.', '_' or '-' "
                            "not starting with '.'.")
    paths = {column: _resolved(values.get(column), column=column, data_root=data_root, where=where)
             for column in PATH_COLUMNS}
    return ManifestEntry(id=row_id, **paths, config=_row_config(values.get("config"), _label_config(
        values, config, data_root=data_root, where=where), where=where), location=location)


def _label_config(values: Mapping[str, Any], config: TransferConfig, *, data_root: str, where: str) -> TransferConfig:
    """``config`` with the row's :data:`LABEL_COLUMNS` applied; ``label_groups`` resolved as the paths are."""
    given = {column: values[column] for column in LABEL_COLUMNS if column in values}
    if "label_groups" in given:
        given["label_groups"] = _resolved(given["label_groups"], column="label_groups", data_root=data_root,
                                          where=where)
    if isinstance(given.get("ignore_label"), str) and given["ignore_label"].isdigit():
        given["ignore_label"] = int(given["ignore_label"])  # CSV cells are text
    try:
        return config.replace(**given)
    except (ValueError, TypeError) as error:
        raise ManifestError(f"{where}: {', '.join(given)} rejected: {error}.") from None


def _resolved(value: Any, *, column: str, data_root: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {column} must be a path (text), got {type(value).__name__}.")
    return join(data_root, value)


def _row_config(overrides: Any, config: TransferConfig, *, where: str) -> TransferConfig:
    if overrides is None:
        return config
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{where}: config is not valid JSON ({error.msg}).") from None
    if not isinstance(overrides, dict):
        raise ManifestError(f"{where}: config must be a JSON object of configuration fields.")
    try:
        return config.replace(**overrides)
    except (ValueError, TypeError) as error:
        raise ManifestError(f"{where}: config override rejected: {error}.") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m ray_jobs.manifest build ...``: write a manifest from folders (:mod:`ray_jobs.manifest_builder`)."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["build"]:
        from ray_jobs.manifest_builder import build_main
        return build_main(arguments[1:])
    print("usage: python -m ray_jobs.manifest build [--help]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
