"""Manifests built from folders: ``python -m ray_jobs.manifest build ...``.

A bulk job is a folder of photos and a few style photos; nobody writes 10,000 rows by hand.
The builder lists the folders (one level, no image is opened: locally ``os.scandir``, 100,000
files in well under a second, see ``benchmarks/manifest_build.py``; in an object store one listing
of each prefix through :mod:`stylecore.storage`, so ``--root s3://bucket/dataset`` works as a
local root does), keeps the image files (by suffix: :data:`IMAGE_SUFFIXES`; others are skipped
and counted), and writes one row per pair:

- ``--pairing cross`` (the default): every content with every style;
- ``--pairing key``: a content and a style whose file names give the same key.

A file's **key** is taken from its stem (name without suffix) by a regular expression that must
match the whole stem: its first group if it has one, else the whole stem (``--content-key``,
``--style-key``; default: the stem). Mask folders are optional; a photo's mask is the file in
the mask folder with the same key, read with the photo's own key expression, so that one folder
can hold both sides' masks (``segmentation/in12.png`` and ``segmentation/tar12.png``). A row
gets each mask its photos have: with both, hand masks; with one (a labelled dataset restyled in
the look of unlabelled style photos), the other side's segments are found from it; with none,
both are matched automatically (:mod:`stylecore.segment_matching`). Mask folders may hold label
maps in any format (``--mask-format``, ``--ignore-label``, ``--label-groups``: written on every
row as the manifest's label columns; the group table is read once here, so a bad one stops the
build with a sentence).

**Ids** come from a template (``--id``) over ``{key}`` (key pairing), ``{content}`` and
``{style}`` (the two keys), with Python's format specs (``pair{key:0>2}`` gives ``pair01``);
characters an id may not hold become ``_``. They are stable (a function of the file names only)
and two rows with one id are refused with a sentence, as are two files of one folder with one key.
Rows are in natural order of their keys (``in2`` before ``in10``). Paths are written relative to
``--root`` (the data root the job will be given) when they lie under it.

The 60 example pairs, exactly as ``manifests/dpst-all.jsonl``::

    python -m ray_jobs.manifest build --root ../shared/data/dpst --content input --style style \\
        --content-masks segmentation --style-masks segmentation --pairing key \\
        --content-key 'in(\\d+)' --style-key 'tar(\\d+)' --id 'pair{key:0>2}' --output manifests/dpst-all.jsonl
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import posixpath
import re
import sys
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ray_jobs.errors import ManifestError
from ray_jobs.manifest_format import COLUMNS, FORMATS
from stylecore.config import MaskFormat, TransferConfig
from stylecore.errors import InputImageError, StorageError
from stylecore.label_maps import read_label_groups
from stylecore.storage import absolute, is_local, is_uri, join, list_files, write_bytes

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
"""File suffixes (any case) taken as images; the photos are not opened to check."""
_NOT_ID_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")

Pairing = Literal["cross", "key"]
Folder = str | os.PathLike[str]
"""A folder: a local path or a URI (``s3://bucket/dataset``); relative ones resolve against the root."""


@dataclasses.dataclass(frozen=True)
class Listing:
    """The image files of one folder by key, and what was left out."""

    folder: str
    """Absolute local path or URI."""
    files: dict[str, str]
    """File names by key."""
    non_images: int
    """Files skipped for not having an image suffix (hidden files and sub-folders are not counted)."""
    unmatched: int
    """Image files whose stem the key expression does not match."""


@dataclasses.dataclass(frozen=True)
class BuiltManifest:
    """The rows, in the manifest's column order, and counts for the summary line."""

    rows: list[dict[str, Any]]
    skipped: dict[str, int]
    """Why files or pairs were left out: non-image files, unmatched names, unpaired photos."""
    with_masks: int
    """Rows with both masks."""
    with_one_mask: int
    """Rows with a content mask or a style mask only: the other side's segments are found from it."""


def list_images(folder: str | os.PathLike[str], key_pattern: str) -> Listing:
    """The images directly in ``folder`` (a local path or a URI) by key (module docstring); a key given
    twice is refused."""
    expression = _compiled(key_pattern)
    folder = absolute(folder)
    files: dict[str, str] = {}
    non_images = unmatched = 0
    for name in _file_names(folder):
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in IMAGE_SUFFIXES:
            non_images += 1
            continue
        match = expression.fullmatch(stem)
        if match is None:
            unmatched += 1
            continue
        key = match.group(1) if expression.groups else match.group(0)
        if key in files:
            raise ManifestError(f"{folder}: {files[key]} and {name} both give the key {key!r}; "
                                "rename one or use a key expression that tells them apart.")
        files[key] = name
    return Listing(folder=folder, files=files, non_images=non_images, unmatched=unmatched)


def _file_names(folder: str) -> list[str]:
    """Names of the files directly in ``folder``, hidden ones left out: ``os.scandir`` for a local
    folder (the fast path the module docstring measures), one listing of the prefix
    (:func:`stylecore.storage.list_files`) in an object store."""
    if not is_local(folder):
        try:
            return [posixpath.basename(location) for location in list_files(folder, "[!.]*")]
        except StorageError as error:
            raise ManifestError(f"cannot list {folder}: {error}") from None
    try:
        entries = list(os.scandir(folder.removeprefix("file://")))
    except OSError as error:
        raise ManifestError(f"cannot list {folder}: {error.strerror or error}.") from None
    return [entry.name for entry in entries if not entry.name.startswith(".") and entry.is_file()]


def build_rows(*, root: Folder, content: Folder, style: Folder, content_masks: Folder | None = None,
               style_masks: Folder | None = None, pairing: Pairing = "cross", content_key: str = ".+",
               style_key: str = ".+", id_template: str | None = None,
               config: Mapping[str, Any] | None = None, labels: Mapping[str, Any] | None = None) -> BuiltManifest:
    """The rows of a manifest from folders (module docstring); folders resolve against ``root`` (a
    local path or a URI).

    ``config``: overrides for every row, checked against :class:`TransferConfig` here. ``labels``:
    the :data:`~ray_jobs.manifest.LABEL_COLUMNS` every row gets (how its masks are read), checked too.
    Raises :class:`ManifestError` with one sentence for anything that cannot be built.
    """
    _check_config(config)
    _check_config(labels)
    template = id_template or ("{key}" if pairing == "key" else "{content}--{style}")
    root = absolute(root)
    contents, styles = (list_images(join(root, os.fspath(folder)), key)
                        for folder, key in ((content, content_key), (style, style_key)))
    masks = [list_images(join(root, os.fspath(folder)), key) if folder is not None else None
             for folder, key in ((content_masks, content_key), (style_masks, style_key))]
    # Each file's written path once, not once per row (a cross product repeats every file), and
    # by joining text to its folder's: pathlib per file took most of the time for 100,000 files.
    content_paths, style_paths, content_mask_paths, style_mask_paths = (
        _written_paths(listing, root) for listing in (contents, styles, *masks))
    if pairing == "key":
        keys = sorted(contents.files.keys() & styles.files.keys(), key=natural_order)
        pairs = [(key, key) for key in keys]
        unpaired = len(contents.files) + len(styles.files) - 2 * len(keys)
    else:
        style_names = sorted(styles.files, key=natural_order)
        pairs = [(content_name, style_name) for content_name in sorted(contents.files, key=natural_order)
                 for style_name in style_names]
        unpaired = 0
    rows, first_seen = [], {}
    for content_name, style_name in pairs:
        row_id = _row_id(template, key=content_name, content=content_name, style=style_name)
        if row_id in first_seen:
            raise ManifestError(f"the id template {template!r} gives the id {row_id!r} to both "
                                f"{first_seen[row_id]} and {content_name}/{style_name}; use a template "
                                "that tells them apart.")
        first_seen[row_id] = f"{content_name}/{style_name}"
        row = {"id": row_id, "content": content_paths[content_name], "style": style_paths[style_name]}
        if content_name in content_mask_paths:
            row["content_mask"] = content_mask_paths[content_name]
        if style_name in style_mask_paths:
            row["style_mask"] = style_mask_paths[style_name]
        row.update(labels or {})
        if config:
            row["config"] = dict(config)
        rows.append(row)
    if not rows:
        raise ManifestError(f"no pairs found in {contents.folder} and {styles.folder}; check the folders "
                            "and the key expressions.")
    skipped = {"non-image files": contents.non_images + styles.non_images,
               "images not matching the key": contents.unmatched + styles.unmatched,
               "photos without a partner of the same key": unpaired}
    masked = [("content_mask" in row) + ("style_mask" in row) for row in rows]
    return BuiltManifest(rows=rows, skipped=skipped, with_masks=masked.count(2), with_one_mask=masked.count(1))


def natural_order(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading digit runs as numbers: ``2`` before ``10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def write_manifest(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write ``rows`` as JSONL, CSV or Parquet by ``path``'s suffix (:mod:`ray_jobs.manifest`), whole or not at
    all (:func:`stylecore.storage.write_bytes`); ``path`` is a local path or a URI."""
    suffix = os.path.splitext(os.fspath(path))[1]
    file_format = FORMATS.get(suffix.lower())
    if file_format is None:
        raise ManifestError(f"{path}: unknown manifest format {suffix!r}; use one of {', '.join(sorted(FORMATS))}.")
    if file_format == "jsonl":
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    elif file_format == "csv":
        data = _csv_text(rows).encode()
    else:
        columns = {column: [_cell(row.get(column)) for row in rows] for column in COLUMNS}
        buffer = io.BytesIO()
        pq.write_table(pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()}), buffer)
        data = buffer.getvalue()
    write_bytes(path, data)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) or "" for column in COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str | None:
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value) if isinstance(value, int) else value


def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ManifestError(f"the key expression {pattern!r} is not a valid regular expression ({error}).") from None


def _row_id(template: str, **fields: str) -> str:
    try:
        text = template.format(**fields)
    except (KeyError, IndexError, ValueError) as error:
        raise ManifestError(f"the id template {template!r} cannot be filled ({error}); it may use "
                            "{key}, {content} and {style}.") from None
    return _NOT_ID_CHARACTER.sub("_", text).lstrip(".") or "_"


def _written_paths(listing: Listing | None, root: str) -> dict[str, str]:
    """Each listed file's path by key, relative to ``root`` when under it (POSIX separators), else absolute
    (a local path or a URI)."""
    if listing is None:
        return {}
    folder, separator = listing.folder, "/" if is_uri(root) else os.sep
    if folder == root:
        prefix = "."
    elif folder.startswith(root.rstrip(separator) + separator):
        prefix = folder[len(root.rstrip(separator)) + 1:].replace(os.sep, "/")
    else:
        prefix = folder.replace(os.sep, "/")
    return {key: name if prefix == "." else f"{prefix}/{name}" for key, name in listing.files.items()}


def _check_config(config: Mapping[str, Any] | None) -> None:
    if config is None:
        return
    try:
        TransferConfig().replace(**config)
    except (ValueError, TypeError) as error:
        raise ManifestError(f"the configuration override is rejected: {error}.") from None


def _label_columns(arguments: argparse.Namespace) -> dict[str, Any]:
    """The label columns the options give; the group table read once here, so a bad one stops the build."""
    columns = {"mask_format": arguments.mask_format, "ignore_label": arguments.ignore_label,
               "label_groups": arguments.label_groups and absolute(arguments.label_groups)}
    if columns["label_groups"]:
        read_label_groups(columns["label_groups"])
    return {name: value for name, value in columns.items() if value is not None}


def build_main(argv: Sequence[str]) -> int:
    """``python -m ray_jobs.manifest build``: exit status 0, or 2 with one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m ray_jobs.manifest build",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="data root, a folder or a URI (s3://bucket/dataset): folders "
                        "resolve against it and rows are written relative to it")
    parser.add_argument("--content", required=True, help="folder of content photos")
    parser.add_argument("--style", required=True, help="folder of style photos")
    parser.add_argument("--content-masks", help="folder of content masks, found by the content key; a photo "
                        "without one gets its segments found from its partner's mask")
    parser.add_argument("--style-masks", help="folder of style masks, found by the style key")
    parser.add_argument("--mask-format", choices=typing.get_args(MaskFormat), help="how every row's masks are "
                        "read: palette (colour-coded), ids (class-id images) or colours (a dataset's exact colours); "
                        "written as the mask_format column (default: none, the job's own)")
    parser.add_argument("--ignore-label", type=int, help="with ids masks: the class id that labels nothing")
    parser.add_argument("--label-groups", help="group table (JSON, a path or URI) for every row, read now to check "
                        "it and written as the label_groups column: see manifests/README.md")
    parser.add_argument("--pairing", choices=("cross", "key"), default="cross",
                        help="cross: every content with every style; key: photos whose keys are equal")
    parser.add_argument("--content-key", default=".+", help="regular expression over a content file's stem; "
                        "its first group (or the whole match) is the key")
    parser.add_argument("--style-key", default=".+", help="the same, for style files")
    parser.add_argument("--id", dest="id_template", help="id template over {key}, {content}, {style} "
                        "(default: {key} for key pairing, {content}--{style} for the cross product)")
    parser.add_argument("--config", help="JSON object of TransferConfig fields set on every row")
    parser.add_argument("--output", required=True, help="manifest to write (a path or a URI): .jsonl, .csv or "
                        ".parquet")
    arguments = parser.parse_args(argv)
    try:
        config = json.loads(arguments.config) if arguments.config else None
        if config is not None and not isinstance(config, dict):
            raise ManifestError("--config must be a JSON object of configuration fields.")
        built = build_rows(root=arguments.root, content=arguments.content, style=arguments.style,
                           content_masks=arguments.content_masks, style_masks=arguments.style_masks,
                           pairing=arguments.pairing, content_key=arguments.content_key,
                           style_key=arguments.style_key, id_template=arguments.id_template, config=config,
                           labels=_label_columns(arguments))
        write_manifest(built.rows, arguments.output)
    except json.JSONDecodeError as error:
        print(f"error: --config is not valid JSON ({error.msg}).", file=sys.stderr)
        return 2
    except (ManifestError, InputImageError, StorageError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{count} {what}" for what, count in built.skipped.items() if count) or "nothing"
    print(f"wrote {len(built.rows)} rows ({built.with_masks} with masks, {built.with_one_mask} with one) to "
          f"{arguments.output}; skipped {skipped}", file=sys.stderr)
    return 0
