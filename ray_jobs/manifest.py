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

import collections.abc
import csv
import dataclasses
import io
import json
import os
import posixpath
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_jobs.errors import ManifestError, one_line
from ray_jobs.manifest_format import COLUMNS, FORMATS, LABEL_COLUMNS, PATH_COLUMNS, REQUIRED_COLUMNS
from stylecore.config import TransferConfig
from stylecore.errors import StorageError
from stylecore.storage import join, read_bytes

_ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
_CHUNK_ROWS = 65_536
"""Rows of a JSONL or CSV manifest parsed as Python values before they become Arrow columns."""
_CONFIG_COLUMNS = (*LABEL_COLUMNS, "config")
"""The columns that make a row's configuration; rows alike in them share one :class:`TransferConfig`."""
_UNITS = {"jsonl": "line", "csv": "line", "parquet": "row"}


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


PATH_TYPE = pa.dictionary(pa.int32(), pa.string())
"""A path column: a photo or mask shared by many rows (a style photo by all of them) is stored once."""
ROW_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False),
                        *(pa.field(name, PATH_TYPE) for name in PATH_COLUMNS),
                        pa.field("config", pa.int32(), nullable=False), pa.field("position", pa.int64(), nullable=False)])
"""A checked manifest's columns: the id, the four paths resolved, the index of the row's
configuration in :attr:`Manifest.configs` and its line (or row) number in the file."""


class Manifest(collections.abc.Sequence):
    """A checked manifest's rows as Arrow columns (:data:`ROW_SCHEMA`), so that a million rows cost
    a few hundred bytes each; a row becomes a :class:`ManifestEntry` only when it is asked for.

    Rows alike in their configuration columns share one :class:`TransferConfig` of :attr:`configs`.
    """

    def __init__(self, table: pa.Table, configs: Iterable[TransferConfig], unit: str = "line") -> None:
        self.table = table.combine_chunks()
        self.configs = tuple(configs)
        self.unit = unit

    @classmethod
    def of(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        """A manifest of entries made by hand (a notebook, a test); their locations are numbered anew."""
        entries = list(entries)
        configs = list(dict.fromkeys(entry.config for entry in entries))
        index = {config: number for number, config in enumerate(configs)}
        columns = {"id": [entry.id for entry in entries],
                   **{name: [_text(getattr(entry, name)) for entry in entries] for name in PATH_COLUMNS},
                   "config": [index[entry.config] for entry in entries],
                   "position": list(range(1, len(entries) + 1))}
        return cls(pa.table(columns, schema=ROW_SCHEMA), configs)

    def __len__(self) -> int:
        return self.table.num_rows

    @overload
    def __getitem__(self, index: int) -> ManifestEntry: ...
    @overload
    def __getitem__(self, index: slice) -> Manifest: ...

    def __getitem__(self, index: int | slice) -> ManifestEntry | Manifest:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        row = self.table.slice(index % len(self), 1).to_pylist()[0]
        return ManifestEntry(id=row["id"], **{name: row[name] for name in PATH_COLUMNS},
                             config=self.configs[row["config"]], location=f"{self.unit} {row['position']}")

    def take(self, indices: Sequence[int] | np.ndarray) -> Manifest:
        """The rows at ``indices``, in that order."""
        return Manifest(self.table.take(pa.array(np.asarray(indices, dtype=np.int64))), self.configs, self.unit)

    def config_column(self, values: Callable[[TransferConfig], Any], type_: pa.DataType) -> pa.DictionaryArray:
        """``values(config)`` of each row's configuration, computed once per distinct configuration: a
        dictionary array whose dictionary has one value per configuration."""
        return pa.DictionaryArray.from_arrays(self.table["config"].combine_chunks(),
                                              pa.array([values(config) for config in self.configs], type_))


def _text(value: object) -> str | None:
    return None if value is None else os.fspath(value)


def read_manifest(path: str | os.PathLike[str], *, data_root: str | os.PathLike[str],
                  config: TransferConfig) -> Manifest:
    """Read and check a whole manifest (module docstring); relative paths resolve against ``data_root``.

    ``config`` is the job's configuration, onto which each row's overrides are merged.
    Raises :class:`ManifestError` for any problem, before any row is returned; of several, the one
    on the earliest line.
    """
    path = os.fspath(path)
    suffix = posixpath.splitext(path)[1]
    file_format = FORMATS.get(suffix.lower())
    if file_format is None:
        raise ManifestError(f"{path}: unknown manifest format {suffix!r}; "
                            f"use one of {', '.join(sorted(FORMATS))}.")
    raw = _raw_table(path, file_format)
    if raw.num_rows == 0:
        raise ManifestError(f"{path}: the manifest has no rows.")
    return _checked(raw, path=path, unit=_UNITS[file_format], data_root=os.fspath(data_root), config=config)


_RAW_SCHEMA = pa.schema([*(pa.field(name, pa.string()) for name in COLUMNS), pa.field("position", pa.int64())])
"""Every column as text (absent: null), before any check but the ones a format needs to make it text."""


def _raw_table(path: str, file_format: str) -> pa.Table:
    readers = {"jsonl": _jsonl_rows, "csv": _csv_rows}
    try:
        data = read_bytes(path)
        if file_format == "parquet":
            return _parquet_table(path, data)
        return _chunked(readers[file_format](path, data))
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found.") from None
    except StorageError as error:
        raise ManifestError(f"cannot read the manifest: {error}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    except (OSError, pa.ArrowException) as error:
        raise ManifestError(f"{path}: cannot read the manifest ({one_line(error)}).") from None


def _chunked(rows: Iterator[tuple[int, dict[str, str]]]) -> pa.Table:
    """Rows of text values as Arrow, :data:`_CHUNK_ROWS` at a time, so their Python objects stay few."""
    tables, chunk = [], []
    for position, values in rows:
        chunk.append({**values, "position": position})
        if len(chunk) == _CHUNK_ROWS:
            tables.append(pa.Table.from_pylist(chunk, schema=_RAW_SCHEMA))
            chunk = []
    tables.append(pa.Table.from_pylist(chunk, schema=_RAW_SCHEMA))
    return pa.concat_tables(tables)


def _jsonl_rows(path: str, data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
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
            yield number, _as_text(values, where=f"{path}, line {number}")


def _as_text(values: Mapping[str, Any], *, where: str) -> dict[str, str]:
    """A JSON object's (or a Parquet row's) values as manifest text; a value of the wrong kind is refused."""
    _check_columns(values, where=where)
    text = {}
    for column, value in values.items():
        if value is None or value == "":
            continue
        if column == "id" and not isinstance(value, str):
            raise ManifestError(f"{where}: id {value!r} must be text of letters, digits, '.', '_' or '-' "
                                "not starting with '.'.")
        if column in (*PATH_COLUMNS, "label_groups") and not isinstance(value, str):
            raise ManifestError(f"{where}: {column} must be a path (text), got {type(value).__name__}.")
        text[column] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text


def _check_columns(values: Iterable[str], *, where: str) -> None:
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        raise ManifestError(f"{where}: unknown column(s) {', '.join(unknown)}; "
                            f"the columns are {', '.join(COLUMNS)}.")


def _csv_rows(path: str, data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    with io.StringIO(data.decode("utf-8"), newline="") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        for column in REQUIRED_COLUMNS:
            if column not in header:
                raise ManifestError(f"{path}, line 1: missing required column {column!r} in the header.")
        for values in reader:
            if None in values:
                raise ManifestError(f"{path}, line {reader.line_num}: more cells than header columns.")
            _check_columns(values, where=f"{path}, line {reader.line_num}")
            yield reader.line_num, {key: value for key, value in values.items() if value != ""}


def _parquet_table(path: str, data: bytes) -> pa.Table:
    """A Parquet manifest's columns as text; a column of another type is converted row by row, and refused
    where :func:`_as_text` refuses a value."""
    table = pq.read_table(pa.BufferReader(data))
    for column in REQUIRED_COLUMNS:
        if column not in table.column_names:
            raise ManifestError(f"{path}: missing required column {column!r}.")
    if table.num_rows:
        _check_columns(table.column_names, where=f"{path}, row 1")
    columns = {"position": pa.array(np.arange(1, table.num_rows + 1), pa.int64())}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.if_else(pc.equal(column, ""), None, column.cast(pa.string()))
        else:
            column = pa.array([_as_text({name: value}, where=f"{path}, row {number}").get(name)
                               for number, value in enumerate(column.to_pylist(), start=1)], pa.string())
        columns[name] = column
    return pa.table({name: columns.get(name, pa.nulls(table.num_rows, pa.string())) for name in _RAW_SCHEMA.names},
                    schema=_RAW_SCHEMA)


def _checked(raw: pa.Table, *, path: str, unit: str, data_root: str, config: TransferConfig) -> Manifest:
    """The raw rows checked and resolved; the problem on the earliest row, if any, raised."""
    positions = raw["position"].to_numpy()
    problems: list[tuple[int, str]] = []
    for column in REQUIRED_COLUMNS:
        missing = np.flatnonzero(pc.is_null(raw[column]).to_numpy(zero_copy_only=False))
        if missing.size:
            problems.append((missing[0], f"missing required column {column!r}."))
    ids = raw["id"]
    bad = np.flatnonzero(pc.invert(pc.fill_null(pc.match_substring_regex(ids, _ID_PATTERN), True))
                         .to_numpy(zero_copy_only=False))
    if bad.size:
        problems.append((bad[0], f"id {ids[int(bad[0])].as_py()!r} must be text of letters, digits, '.', '_' or '-' "
                                 "not starting with '.'."))
    problems += _duplicate(ids, positions, unit)
    config_index, configs, config_problems = _configs(raw, data_root=data_root, config=config,
                                                     where=lambda row: f"{path}, {unit} {positions[row]}")
    problems += config_problems
    if problems:
        row, message = min(problems, key=lambda problem: problem[0])
        raise ManifestError(message if message.startswith(path) else f"{path}, {unit} {positions[row]}: {message}")
    table = pa.table({"id": ids, **{name: _resolved(raw[name], data_root) for name in PATH_COLUMNS},
                      "config": config_index, "position": raw["position"]}, schema=ROW_SCHEMA)
    return Manifest(table, configs, unit)


def _duplicate(ids: pa.ChunkedArray, positions: np.ndarray, unit: str) -> list[tuple[int, str]]:
    """The first row whose id an earlier row has, with its message; none when the ids are distinct."""
    codes = ids.combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    if first.size == codes.size:
        return []
    repeated = np.ones(codes.size, bool)
    repeated[first] = False
    row = int(np.flatnonzero(repeated)[0])
    earlier = int(first[np.searchsorted(np.unique(codes), codes[row])])
    return [(row, f"duplicate id {ids[row].as_py()!r} (first used on {unit} {positions[earlier]}).")]


def _configs(raw: pa.Table, *, data_root: str, config: TransferConfig,
             where: Callable[[int], str]) -> tuple[pa.Array, list[TransferConfig], list[tuple[int, str]]]:
    """Each row's configuration index, the distinct configurations, and the problem of each distinct
    configuration that is refused (at its first row). Each distinct combination is checked once."""
    key = pc.binary_join_element_wise(*(pc.fill_null(raw[name], "\x01") for name in _CONFIG_COLUMNS), "\x00")
    encoded = key.combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    configs, problems = [], []
    for row in first:
        values = {name: raw[name][int(row)].as_py() for name in _CONFIG_COLUMNS if raw[name][int(row)].is_valid}
        try:
            configs.append(_row_config(values.get("config"), _label_config(values, config, data_root=data_root,
                                                                            where=where(int(row))), where=where(int(row))))
        except ManifestError as error:
            problems.append((int(row), str(error)))
            configs.append(config)
    return pa.array(codes, pa.int32()), configs, problems


def _resolved(column: pa.ChunkedArray, data_root: str) -> pa.DictionaryArray:
    """Each path resolved against ``data_root``, each distinct path once (:data:`PATH_TYPE`)."""
    encoded = column.combine_chunks().dictionary_encode()
    resolved = pa.array([join(data_root, value) for value in encoded.dictionary.to_pylist()], pa.string())
    return pa.DictionaryArray.from_arrays(encoded.indices, resolved)


def _label_config(values: Mapping[str, Any], config: TransferConfig, *, data_root: str, where: str) -> TransferConfig:
    """``config`` with the row's :data:`LABEL_COLUMNS` applied; ``label_groups`` resolved as the paths are."""
    given = {column: values[column] for column in LABEL_COLUMNS if column in values}
    if "label_groups" in given:
        given["label_groups"] = join(data_root, given["label_groups"])
    if isinstance(given.get("ignore_label"), str) and given["ignore_label"].isdigit():
        given["ignore_label"] = int(given["ignore_label"])  # manifest cells are text
    try:
        return config.replace(**given)
    except (ValueError, TypeError) as error:
        raise ManifestError(f"{where}: {', '.join(given)} rejected: {error}.") from None


def _row_config(overrides: Any, config: TransferConfig, *, where: str) -> TransferConfig:
    if overrides is None:
        return config
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
