"""What identifies a row's work: its input files, its configuration, the extractor's weights, the code.

Two renders of a row with the same fingerprint are the same computation, so a rerun may reuse the
first one's image (see :mod:`ray_jobs.plan`). The fingerprint is

- the SHA-256 of each input file (photos and masks);
- the canonical configuration hash (:meth:`stylecore.config.TransferConfig.config_hash`);
- the identity of the extractor's weights (:func:`weights_identity`): the SHA-256 of the weights
  file, or ``"random"`` for seeded random weights, whose seed is part of the configuration;
- the render version (:data:`stylecore.render_version.RENDER_VERSION`), which changes whenever
  the rendering code's output may change.

Paths are not part of it: moving the data root or renaming a file does not redo a row, changing a
byte of a photo, a mask, a configuration value, the weights or the rendering code does.

A rerun computes the fingerprints of a whole manifest as Arrow columns (:mod:`ray_jobs.plan`),
hashing only the files whose listing identity is new or changed, each distinct file once and in
parallel (:func:`hash_files`): a style photo shared by 10,000 rows is read once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
from collections.abc import Iterable

from stylecore.errors import StorageError
from stylecore.storage import open_input
from stylecore.weights import SQUEEZENET_SHA256

_BLOCK_SIZE = 1 << 20
HASH_THREADS = 8
"""Files hashed at once: reading is I/O-bound, and ``hashlib`` releases the GIL on large blocks."""
HASH_BATCH = 1024
RANDOM_WEIGHTS = "random"


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """Hex SHA-256 digests of a row's files (``None``: absent or unreadable), its config hash,
    the identity of its extractor's weights and the render version. Each field is a metadata column."""

    content_sha256: str | None
    style_sha256: str | None
    content_mask_sha256: str | None
    style_mask_sha256: str | None
    config_hash: str
    extractor_weights_sha256: str
    render_version: int


FINGERPRINT_COLUMNS = tuple(field.name for field in dataclasses.fields(Fingerprint))
"""The metadata columns a fingerprint fills, in :class:`Fingerprint`'s order."""


def file_sha256(path: str | os.PathLike[str] | None) -> str | None:
    """Hex SHA-256 of a file's (or object's) bytes; ``None`` when ``path`` is ``None``, missing or unreadable."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open_input(path) as file:
            for block in iter(lambda: file.read(_BLOCK_SIZE), b""):
                digest.update(block)
    except (OSError, StorageError):
        return None
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``, the same digest :func:`file_sha256` gives for a file holding it."""
    return hashlib.sha256(data).hexdigest()


def hash_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str | None]:
    """:func:`file_sha256` of each distinct path or URI, read in parallel, each once; keyed by the
    location as a string (a ``Path`` would turn ``s3://b/k`` into ``s3:/b/k``).

    Paths go to the threads :data:`HASH_BATCH` at a time, so the pending work stays small however
    many files a manifest names (``Executor.map`` would queue a future for every one at once).
    """
    distinct = list(dict.fromkeys(os.fspath(path) for path in paths))
    hashes: dict[str, str | None] = {}
    with concurrent.futures.ThreadPoolExecutor(HASH_THREADS) as pool:
        for start in range(0, len(distinct), HASH_BATCH):
            batch = distinct[start:start + HASH_BATCH]
            hashes.update(zip(batch, pool.map(file_sha256, batch), strict=True))
    return hashes


def weights_identity(extractor: str, weights: str | os.PathLike[str] | None) -> str:
    """What the weights of ``extractor`` loaded from ``weights`` (``--weights``; ``None``: the default) are.

    SqueezeNet only ever loads the one checked file, so its identity is that file's known SHA-256;
    VGG-19 is ``"random"``, ``"imagenet"`` (Keras' download) or the SHA-256 of the file given. A
    file that cannot be read gives ``"unreadable <path>"``: the workers will refuse it in any case.
    The same identity, computed by the worker from what it actually loaded
    (:func:`loaded_weights_identity`), must match for the row to be rendered.
    """
    if extractor == "squeezenet":
        return SQUEEZENET_SHA256
    source = "imagenet" if weights is None else str(weights)
    if source in (RANDOM_WEIGHTS, "imagenet"):
        return source
    return file_sha256(source) or f"unreadable {source}"


def loaded_weights_identity(weights_sha256: str | None) -> str:
    """:func:`weights_identity` of a loaded extractor, from its ``weights_sha256`` (``None``: random)."""
    return weights_sha256 or RANDOM_WEIGHTS
