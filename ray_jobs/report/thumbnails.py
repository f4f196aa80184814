"""The report's thumbnails: each shown row's five images, small, in ``REPORT/thumbnails/``.

Only rows the page shows get thumbnails, and a row shown in several sections (the worst by one
metric, the best by another, the sample) gets them once: :func:`row_views` takes distinct rows.

An output's thumbnail is made from the preview its worker wrote (``OUTPUT/previews/<id>.jpg``,
:mod:`ray_jobs.outputs`) when the preview's comment is the SHA-256 the row records for its image:
a 12-megapixel PNG costs 0.65 to 0.8 s to decode, its preview milliseconds. Without one (an output
written before previews, an image altered since) the image itself is decoded.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from stylecore.atomic import atomic_path
from stylecore.errors import StorageError
from ray_jobs.outputs import preview_path
from stylecore.storage import is_local, join, open_input, read_bytes, resolve

IMAGES = {"content": ("content_path",), "output": ("output_path",), "style": ("style_path",),
          "content mask": ("content_mask_path", "automatic_content_mask_path"),
          "style mask": ("style_mask_path", "automatic_style_mask_path")}
"""Thumbnail columns, left to right, and the metadata columns each is read from, the first one set
winning: the result beside the content it restyles, then what it was made from; a mask column
shows the hand mask, else the automatically matched one."""
THUMBNAIL_HEIGHT = 160
THUMBNAIL_MAX_WIDTH = 256
THUMBNAIL_THREADS = 4
"""Thumbnails made at once (:func:`write_thumbnails`)."""


@dataclasses.dataclass(frozen=True)
class Preview:
    """A smaller copy of a thumbnail's source, to use instead when it was made from that very image."""

    location: str
    image_sha256: str
    """The SHA-256 of the image file the preview must have been made from (its JPEG comment)."""


ThumbnailJob = tuple[str | Path, Path, bool, Preview | None]
"""(source, target, whether it is a mask, the source's preview or ``None``)."""


@dataclasses.dataclass(frozen=True)
class PairView:
    """One row as the report shows it; paths are relative to the report folder."""

    row: Mapping[str, Any]
    thumbnails: dict[str, str | None]
    """Each of :data:`IMAGES` to its thumbnail, ``None`` where the row has no readable file."""
    output_link: str | None
    """The full-size output image, ``None`` when it does not exist."""


def row_views(rows: Sequence[Mapping[str, Any]], run_dir: str, report_dir: Path) -> dict[str, PairView]:
    """Each distinct row's :class:`PairView` by id, its thumbnails written into ``report_dir/thumbnails`` once."""
    distinct = {row["id"]: row for row in rows}
    planned = {row_id: _planned_thumbnails(row, run_dir) for row_id, row in distinct.items()}
    jobs = [(source, report_dir / relative, name.endswith("mask"), _preview(distinct[row_id], run_dir, name))
            for row_id, plan in planned.items() for name, (relative, source) in plan.items() if source is not None]
    written = {job[1] for job, done in zip(jobs, write_thumbnails(jobs), strict=True) if done}
    return {row_id: PairView(row=row, output_link=_output_link(row, run_dir, report_dir),
                             thumbnails={name: relative if report_dir / relative in written else None
                                         for name, (relative, _) in planned[row_id].items()})
            for row_id, row in distinct.items()}


def _planned_thumbnails(row: Mapping[str, Any], run_dir: str) -> dict[str, tuple[str, str | None]]:
    """Each of :data:`IMAGES` to (its thumbnail relative to the report folder, its source or ``None``)."""
    plan = {}
    for name, columns in IMAGES.items():
        extension = "png" if name.endswith("mask") else "jpg"
        relative = f"thumbnails/{_file_stem(row['id'])}-{name.replace(' ', '-')}.{extension}"
        plan[name] = (relative, _source_path(next((row[column] for column in columns if row.get(column)), None),
                                             run_dir))
    return plan


def _preview(row: Mapping[str, Any], run_dir: str, name: str) -> Preview | None:
    """The worker's preview of the row's output image, for the ``output`` thumbnail of a row that records its hash."""
    if name != "output" or not row.get("output_sha256"):
        return None
    return Preview(join(run_dir, preview_path(row["id"])), row["output_sha256"])


def _output_link(row: Mapping[str, Any], run_dir: str, report_dir: Path) -> str | None:
    """The full-size output relative to the report folder; ``None`` when it is not a local file."""
    output = _source_path(row.get("output_path"), run_dir)
    output_file = resolve(output)[1] if output and is_local(output) else None
    return (Path(os.path.relpath(output_file, report_dir)).as_posix()
            if output_file and os.path.isfile(output_file) else None)


def _source_path(value: str | None, run_dir: str) -> str | None:
    """A metadata path as a location: absolute paths and URIs as given, relative ones against the run folder."""
    return join(run_dir, value) if value else None


def _file_stem(row_id: str) -> str:
    """A file name for ``row_id``: itself when it is a safe name, else a digest (ids come from data)."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,100}", row_id):
        return row_id
    return "id-" + hashlib.sha256(row_id.encode()).hexdigest()[:16]


def write_thumbnails(jobs: Sequence[ThumbnailJob]) -> list[bool]:
    """Write each ``(source, target, mask, preview)`` as :func:`write_thumbnail` does; whether each target now exists.

    Decoding, resizing and encoding run :data:`THUMBNAIL_THREADS` at a time (Pillow releases the GIL
    for them, and an object-store source mostly waits on the network); the files are written by
    this thread, since :func:`stylecore.atomic.atomic_path` reads the process's umask by setting it.
    """
    with concurrent.futures.ThreadPoolExecutor(THUMBNAIL_THREADS) as pool:
        encoded = list(pool.map(lambda job: _encoded_thumbnail(*job), jobs))
    for (_, target, _, _), data in zip(jobs, encoded, strict=True):
        if isinstance(data, bytes):
            with atomic_path(target) as temporary:
                temporary.write_bytes(data)
    return [data is not None for data in encoded]


def write_thumbnail(source: str | Path, target: Path, *, mask: bool, preview: Preview | None = None) -> bool:
    """Save ``source`` scaled, up or down, to fit :data:`THUMBNAIL_HEIGHT` x :data:`THUMBNAIL_MAX_WIDTH`.

    Photos: Lanczos, JPEG quality 85. Masks: nearest neighbour (labels must not blend), PNG.
    A full-resolution photo is decoded once, and at reduced size where the format allows (JPEG
    draft mode; others by ``Image.reduce`` before the Lanczos pass, as ``Image.thumbnail`` does).
    A ``preview`` made from ``source`` (module docstring) is read in its place. A ``target`` newer
    than a local ``source`` is kept, so rebuilding a large run's report redoes only what changed (an
    object-store source is fetched again). Returns False, writing nothing, when ``source`` is missing
    or unreadable.
    """
    return write_thumbnails([(source, target, mask, preview)])[0]


def _encoded_thumbnail(source: str | Path, target: Path, mask: bool, preview: Preview | None) -> bytes | bool | None:
    """The thumbnail's file bytes (:func:`write_thumbnail`); True when ``target`` is fresh and kept,
    ``None`` when ``source`` is missing or unreadable."""
    with contextlib.suppress(OSError):
        if is_local(source) and target.stat().st_mtime >= os.stat(source).st_mtime:
            return True
    return _scaled(_preview_bytes(preview) or source, mask)


def _preview_bytes(preview: Preview | None) -> io.BytesIO | None:
    """The preview's JPEG when it exists and its comment is the expected hash, else ``None``."""
    if preview is None:
        return None
    with contextlib.suppress(OSError, UnidentifiedImageError, StorageError):
        data = io.BytesIO(read_bytes(preview.location))
        with Image.open(data) as opened:
            if opened.info.get("comment") == preview.image_sha256.encode():
                return data
    return None


def _scaled(source: str | Path | io.BytesIO, mask: bool) -> bytes | None:
    """``source`` scaled to fit the thumbnail box, encoded; ``None`` when it is missing or unreadable."""
    try:
        with _opened(source) as stream, Image.open(stream) as opened:
            scale = min(THUMBNAIL_HEIGHT / opened.height, THUMBNAIL_MAX_WIDTH / opened.width)
            size = (max(1, round(opened.width * scale)), max(1, round(opened.height * scale)))
            if mask or scale >= 1.0:
                image = opened.convert("RGB").resize(
                    size, Image.Resampling.NEAREST if mask else Image.Resampling.LANCZOS)
            else:
                opened.thumbnail(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
                image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, StorageError):
        return None
    encoded = io.BytesIO()
    image.save(encoded, format="PNG" if mask else "JPEG", quality=85)
    return encoded.getvalue()


def _opened(source: str | Path | io.BytesIO) -> contextlib.AbstractContextManager:
    """A readable stream of ``source``: bytes already read, or the file or object it names."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        return contextlib.nullcontext(source)
    return open_input(source)
