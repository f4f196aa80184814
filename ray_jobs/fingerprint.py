"""What identifies a row's work: the SHA-256 of each input file and the hash of its configuration.

Two renders of a row with the same fingerprint are the same computation, so a rerun may reuse the
first one's image (see :mod:`ray_jobs.resume`). Paths are not part of it: moving the data root or
renaming a file does not redo a row, changing a byte of a photo, a mask or a configuration value does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from ray_jobs.manifest import ManifestEntry
from stylecore.errors import StorageError
from stylecore.storage import open_input

_BLOCK_SIZE = 1 << 20


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """Hex SHA-256 digests of a row's files (``None``: absent or unreadable) and its config hash."""

    content_sha256: str | None
    style_sha256: str | None
    content_mask_sha256: str | None
    style_mask_sha256: str | None
    config_hash: str


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


def fingerprint(entry: ManifestEntry) -> Fingerprint:
    """Hash ``entry``'s files (reading each once) and configuration."""
    return Fingerprint(content_sha256=file_sha256(entry.content), style_sha256=file_sha256(entry.style),
                       content_mask_sha256=file_sha256(entry.content_mask),
                       style_mask_sha256=file_sha256(entry.style_mask),
                       config_hash=entry.config.config_hash())
