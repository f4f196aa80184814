"""A row's image in the output: where it goes, who writes it, and how a rerun knows it is still the one recorded.

The image of row ``id`` is ``OUTPUT/images/<id>.png``, ``OUTPUT`` a local folder or an object-store
prefix (``s3://bucket/runs/dpst``), written whole or not at all (:func:`stylecore.storage.write_bytes`).
A row whose masks were matched automatically also has its label maps as colour-coded PNGs,
``OUTPUT/masks/<id>-content.png`` and ``-style.png`` (a few kB each), written the same way and by
the same process, before the image: an image present means its masks are too.

**Its preview.** Beside the image goes ``OUTPUT/previews/<id>.jpg``, the result scaled to fit
:data:`PREVIEW_BOX` (twice the report's thumbnail), which the worker makes from the array it
already holds (about 0.05 s for 12 megapixels, against 0.65 to 0.8 s to decode that PNG again;
``docs/measurements.md``). The report's thumbnail of an output is made from it: the JPEG's comment
holds the SHA-256 of the image it was made from, so a preview is used only for the very image the
row records (one altered or rewritten since is decoded instead), in a folder or a bucket alike.

**Who writes it.** With an object store, the worker that rendered the row writes the image straight
to the store and hands the driver only its record; with a local folder, the worker sends the PNG
bytes to the driver, which writes it. A 24-megapixel result is a PNG of 30 to 70 MB: routed through
the driver, a thousand such rows would put tens of GB through one process, one network link and the
head node's object store, one upload at a time while the actors wait; written by the workers, the
uploads run in parallel from every node and the driver's traffic stays a few kB per row. A local
folder, though, is only known to exist on the driver's machine (nodes need not share a disk), so
there the driver writes, as before.

**How a rerun trusts it without downloading it.** Every metadata row records the image's SHA-256,
its size in bytes and, in an object store, the entity tag (ETag) the store gave the object when it
was written. A rerun asks the store for the object's size and ETag (one HEAD request, no body) and
trusts the recorded SHA-256 only when both are unchanged. This is sound because an object cannot
change without its ETag changing: S3 and the stores compatible with it give every write of other
bytes a new tag (the MD5 of the content for a single put, a digest of the part MD5s for a multipart
upload, a fresh value under KMS encryption), so an equal ETag means the bytes we hashed when we
wrote them. The residual risk is a deliberate MD5 collision by someone who can already write to the
bucket. Every mismatch (another size, another tag, a missing object, a row written before ETags
were recorded) counts as not done and the row is rendered again; nothing is downloaded to decide.
On a local file system there is no ETag, and the file is read and hashed as before (a local read is
cheap).
"""

from __future__ import annotations

import concurrent.futures
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ray_jobs.fingerprint import HASH_THREADS, bytes_sha256, hash_files
from ray_jobs.records import Record, automatic_mask_columns, output_columns
from stylecore.storage import ObjectInfo, is_local, join, stat, write_bytes

IMAGES_FOLDER = "images"
MASKS_FOLDER = "masks"
PREVIEWS_FOLDER = "previews"
PREVIEW_BOX = (512, 320)
"""Largest width and height of a preview: twice :mod:`ray_jobs.report.thumbnails`' 256 x 160 box."""
PREVIEW_QUALITY = 90


def image_path(row_id: str) -> str:
    """Where row ``row_id``'s image goes, relative to the output: ``images/<id>.png``."""
    return f"{IMAGES_FOLDER}/{row_id}.png"


def preview_path(row_id: str) -> str:
    """Where row ``row_id``'s preview goes, relative to the output: ``previews/<id>.jpg``."""
    return f"{PREVIEWS_FOLDER}/{row_id}.jpg"


def encode_preview(image: np.ndarray, image_sha256: str) -> bytes:
    """``image`` (H, W, 3) uint8 scaled down to fit :data:`PREVIEW_BOX` (never up) as JPEG bytes whose
    comment is ``image_sha256``, the SHA-256 of the image file it previews (module docstring)."""
    picture = Image.fromarray(image, mode="RGB")
    picture.thumbnail(PREVIEW_BOX, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=PREVIEW_QUALITY, comment=image_sha256)
    return buffer.getvalue()


def workers_write_images(output: str) -> bool:
    """True when the workers write the images themselves: the output is in an object store (module docstring)."""
    return not is_local(output)


def write_image(output: str, row_id: str, png: bytes, masks: Mapping[str, bytes] | None = None,
                preview: bytes | None = None) -> Record:
    """Write ``png`` as row ``row_id``'s image under ``output``, and ``masks`` (PNG bytes by side,
    ``"content"`` and ``"style"``; automatic label maps) and its ``preview`` (:func:`encode_preview`)
    before it; the record's output and automatic mask columns.

    Raises ``OSError`` or :class:`~stylecore.errors.StorageError` when a write fails.
    """
    mask_paths = {side: f"{MASKS_FOLDER}/{row_id}-{side}.png" for side in masks or {}}
    for side, data in (masks or {}).items():
        write_bytes(join(output, mask_paths[side]), data)
    if preview is not None:
        write_bytes(join(output, preview_path(row_id)), preview)
    relative = image_path(row_id)
    location = join(output, relative)
    write_bytes(location, png)
    # The ETag exists only once the object does: one HEAD after the put. A second writer between the
    # put and the HEAD would be recorded with our hash; a run holds its output alone, so none is.
    written = None if is_local(location) else stat(location)
    return {**output_columns(relative, bytes_sha256(png), size=len(png), etag=written.etag if written else None),
            **automatic_mask_columns(mask_paths)}


def images_intact(output: str, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """For each earlier row, True when its ``output_path`` under ``output`` still has the bytes its
    ``output_sha256`` was computed from (module docstring).

    Each distinct image is asked about once, :data:`~ray_jobs.fingerprint.HASH_THREADS` at a time:
    in an object store by its size and ETag (a HEAD request, no body), locally by its SHA-256.
    """
    locations = [join(output, row["output_path"]) for row in rows]
    if is_local(output):
        hashes = hash_files(locations)
        return [hashes[location] == row["output_sha256"] for location, row in zip(locations, rows, strict=True)]
    distinct = list(dict.fromkeys(locations))
    with concurrent.futures.ThreadPoolExecutor(HASH_THREADS) as pool:
        infos = dict(zip(distinct, pool.map(stat, distinct), strict=True))
    return [_same_object(infos[location], row) for location, row in zip(locations, rows, strict=True)]


def _same_object(info: ObjectInfo | None, row: Mapping[str, Any]) -> bool:
    return info is not None and info.etag == row.get("output_etag") and info.size == row.get("output_bytes")
