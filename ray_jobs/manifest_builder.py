"""Manifests built from folders: ``python -m ray_jobs.manifest build ...``.

A bulk job is a folder of photos and a few style photos; nobody writes 10,000 rows by hand.
The builder lists the folders (``os.scandir``, one level, no image is opened: 100,000 files list
in well under a second, see ``benchmarks/manifest_build.py``), keeps the image files (by suffix:
:data:`IMAGE_SUFFIXES`; others are skipped and counted), and writes one row per pair:

- ``--pairing cross`` (the default): every content with every style;
- ``--pairing key``: a content and a style whose file names give the same key.

A file's **key** is taken from its stem (name without suffix) by a regular expression that must
match the whole stem: its first group if it has one, else the whole stem (``--content-key``,
``--style-key``; default: the stem). Mask folders are optional; a photo's mask is the file in
the mask folder with the same key, read with the photo's own key expression, so that one folder
can hold both sides' masks (``segmentation/in12.png`` and ``segmentation/tar12.png``). A row
gets masks when both its photos have one; otherwise none, and the transfer matches segments
automatically (:mod:`stylecore.segment_matching`).

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
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ray_jobs.errors import ManifestError
from ray_jobs.manifest_format import COLUMNS, FORMATS
from stylecore.atomic import atomic_path
from stylecore.config import TransferConfig

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
"""File suffixes (any case) taken as images; the photos are not opened to check."""
_NOT_ID_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")

Pairing = Literal["cross", "key"]


@dataclasses.dataclass(frozen=True)
class Listing:
    """The image files of one folder by key, and what was left out."""

    folder: Path
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


def list_images(folder: Path, key_pattern: str) -> Listing:
    """The images directly in ``folder`` by key (module docstring); a key given twice is refused."""
    expression = _compiled(key_pattern)
    files: dict[str, Path] = {}
    non_images = unmatched = 0
    try:
        entries = list(os.scandir(folder))
    except OSError as error:
        raise ManifestError(f"cannot list {folder}: {error.strerror or error}.") from None
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        stem, suffix = os.path.splitext(entry.name)
        if suffix.lower() not in IMAGE_SUFFIXES:
            non_images += 1
            continue
        match = expression.fullmatch(stem)
        if match is None:
            unmatched += 1
            continue
        key = match.group(1) if expression.groups else match.group(0)
        if key in files:
            raise ManifestError(f"{folder}: {files[key]} and {entry.name} both give the key {key!r}; "
                                "rename one or use a key expression that tells them apart.")
        files[key] = entry.name
    return Listing(folder=folder, files=files, non_images=non_images, unmatched=unmatched)


def build_rows(*, root: Path, content: Path, style: Path, content_masks: Path | None = None,
               style_masks: Path | None = None, pairing: Pairing = "cross", content_key: str = ".+",
               style_key: str = ".+", id_template: str | None = None,
               config: Mapping[str, Any] | None = None) -> BuiltManifest:
    """The rows of a manifest from folders (module docstring); folders resolve against ``root``.

    ``config``: overrides for every row, checked against :class:`TransferConfig` here.
    Raises :class:`ManifestError` with one sentence for anything that cannot be built.
    """
    _check_config(config)
    template = id_template or ("{key}" if pairing == "key" else "{content}--{style}")
    contents, styles = (list_images(root / folder, key) for folder, key in ((content, content_key), (style, style_key)))
    masks = [list_images(root / folder, key) if folder is not None else None
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
        if content_name in content_mask_paths and style_name in style_mask_paths:
            row.update(content_mask=content_mask_paths[content_name], style_mask=style_mask_paths[style_name])
        if config:
            row["config"] = dict(config)
        rows.append(row)
    if not rows:
        raise ManifestError(f"no pairs found in {root / content} and {root / style}; check the folders "
                            "and the key expressions.")
    skipped = {"non-image files": contents.non_images + styles.non_images,
               "images not matching the key": contents.unmatched + styles.unmatched,
               "photos without a partner of the same key": unpaired}
    return BuiltManifest(rows=rows, skipped=skipped, with_masks=sum("content_mask" in row for row in rows))


def natural_order(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading digit runs as numbers: ``2`` before ``10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def write_manifest(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Write ``rows`` as JSONL, CSV or Parquet by ``path``'s suffix (:mod:`ray_jobs.manifest`), write then rename."""
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ManifestError(f"{path}: unknown manifest format {path.suffix!r}; use one of {', '.join(sorted(FORMATS))}.")
    with atomic_path(path) as temporary:
        if file_format == "jsonl":
            temporary.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        elif file_format == "csv":
            temporary.write_text(_csv_text(rows), encoding="utf-8")
        else:
            columns = {column: [_cell(row.get(column)) for row in rows] for column in COLUMNS}
            pq.write_table(pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()}),
                           temporary)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) or "" for column in COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str | None:
    return json.dumps(value) if isinstance(value, dict) else value


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


def _written_paths(listing: Listing | None, root: Path) -> dict[str, str]:
    """Each listed file's path by key, relative to ``root`` when under it (POSIX separators), else absolute."""
    if listing is None:
        return {}
    folder, base = listing.folder.absolute(), root.absolute()
    prefix = folder.relative_to(base).as_posix() if folder.is_relative_to(base) else folder.as_posix()
    return {key: name if prefix == "." else f"{prefix}/{name}" for key, name in listing.files.items()}


def _check_config(config: Mapping[str, Any] | None) -> None:
    if config is None:
        return
    try:
        TransferConfig().replace(**config)
    except (ValueError, TypeError) as error:
        raise ManifestError(f"the configuration override is rejected: {error}.") from None


def build_main(argv: Sequence[str]) -> int:
    """``python -m ray_jobs.manifest build``: exit status 0, or 2 with one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m ray_jobs.manifest build",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="data root: folders resolve against it and rows are written relative to it")
    parser.add_argument("--content", type=Path, required=True, help="folder of content photos")
    parser.add_argument("--style", type=Path, required=True, help="folder of style photos")
    parser.add_argument("--content-masks", type=Path, help="folder of content masks, found by the content key")
    parser.add_argument("--style-masks", type=Path, help="folder of style masks, found by the style key")
    parser.add_argument("--pairing", choices=("cross", "key"), default="cross",
                        help="cross: every content with every style; key: photos whose keys are equal")
    parser.add_argument("--content-key", default=".+", help="regular expression over a content file's stem; "
                        "its first group (or the whole match) is the key")
    parser.add_argument("--style-key", default=".+", help="the same, for style files")
    parser.add_argument("--id", dest="id_template", help="id template over {key}, {content}, {style} "
                        "(default: {key} for key pairing, {content}--{style} for the cross product)")
    parser.add_argument("--config", help="JSON object of TransferConfig fields set on every row")
    parser.add_argument("--output", type=Path, required=True, help="manifest to write: .jsonl, .csv or .parquet")
    arguments = parser.parse_args(argv)
    try:
        config = json.loads(arguments.config) if arguments.config else None
        if config is not None and not isinstance(config, dict):
            raise ManifestError("--config must be a JSON object of configuration fields.")
        built = build_rows(root=arguments.root, content=arguments.content, style=arguments.style,
                           content_masks=arguments.content_masks, style_masks=arguments.style_masks,
                           pairing=arguments.pairing, content_key=arguments.content_key,
                           style_key=arguments.style_key, id_template=arguments.id_template, config=config)
        write_manifest(built.rows, arguments.output)
    except json.JSONDecodeError as error:
        print(f"error: --config is not valid JSON ({error.msg}).", file=sys.stderr)
        return 2
    except (ManifestError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{count} {what}" for what, count in built.skipped.items() if count) or "nothing"
    print(f"wrote {len(built.rows)} rows ({built.with_masks} with masks) to {arguments.output}; skipped {skipped}",
          file=sys.stderr)
    return 0
