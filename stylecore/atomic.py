"""Crash-safe file writing: write beside the target, then rename over it.

``os.replace`` is atomic on POSIX within one file system, so a reader (or a rerun that trusts
existing outputs) sees either the old file, the complete new one, or none, never a torn file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; rename it to ``target`` if the block succeeds.

    With ``keep_suffix`` the temporary name keeps ``target``'s suffix so that writers which infer
    the format from it (Pillow, PyArrow) still work; without, it ends in ``.partial``, so that no
    reader's glob of the suffix (DuckDB's ``*.parquet``) matches it. On an exception the temporary
    file is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".partial{target.suffix}" if keep_suffix else ".partial"
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=suffix)
    os.close(handle)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
