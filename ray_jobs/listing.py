"""What a file is without reading it: its listing identity, the size and modification time its
folder's listing gives.

A rerun decides that an input photo, a mask or an output image is unchanged from its listing
identity alone, as ``make`` and ``rsync`` do, and reads (hashes) only the files whose identity is
new or differs from the one recorded (:mod:`ray_jobs.plan`). The one change a listing cannot see,
bytes rewritten with the size and the time restored, is what ``--rehash`` is for.

- **Local files**: ``os.stat``, one system call per file (no bytes read); ``mtime_ns`` is the
  modification time in nanoseconds.
- **Objects** (``s3://``, ``gs://``): the listing of each distinct folder (prefix) the locations
  are in, one request per 1,000 keys, never a request per object; ``mtime_ns`` is the object's
  last-modified time as the listing gives it. An object rewritten gets a new last-modified time,
  and the store's listing is the only source of both values, so a recorded identity is compared
  with one from the same kind of request. (pyarrow's listing does not carry the ETag; the size and
  time suffice to notice a rewrite, and a rewrite noticed is hashed before anything is trusted.)

Absent files have a null size and time.
"""

from __future__ import annotations

import collections
import os
import posixpath
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.fs as pafs

from stylecore.storage import is_local, is_uri, list_entries, resolve

IDENTITY_SCHEMA = pa.schema([pa.field("location", pa.string(), nullable=False), pa.field("size", pa.int64()),
                             pa.field("mtime_ns", pa.int64())])
"""One row per file: where it is, its size in bytes and modification time in ns (null: absent)."""
FOLDER_SCHEMA = pa.schema([pa.field("name", pa.string(), nullable=False), pa.field("size", pa.int64()),
                           pa.field("mtime_ns", pa.int64())])


def identities(locations: Iterable[str]) -> pa.Table:
    """The listing identity (:data:`IDENTITY_SCHEMA`) of each distinct location, local or in a store."""
    locations = list(dict.fromkeys(locations))
    sizes: dict[str, int] = {}
    times: dict[str, int] = {}
    by_folder: dict[str, list[str]] = collections.defaultdict(list)
    for location in locations:
        if is_local(location):
            _stat_into(location, sizes, times)
        else:
            by_folder[posixpath.dirname(location)].append(location)
    for folder, within in by_folder.items():
        listed = list_folder(folder)
        found = dict(zip(listed["name"].to_pylist(), zip(listed["size"].to_pylist(), listed["mtime_ns"].to_pylist(),
                                                          strict=True), strict=True))
        for location in within:
            if (entry := found.get(posixpath.basename(location))) is not None:
                sizes[location], times[location] = entry
    return pa.table({"location": locations, "size": [sizes.get(location) for location in locations],
                     "mtime_ns": [times.get(location) for location in locations]}, schema=IDENTITY_SCHEMA)


def _stat_into(location: str, sizes: dict[str, int], times: dict[str, int]) -> None:
    try:  # a manifest's local paths are absolute already; only file:// URIs need resolving
        status = os.stat(resolve(location)[1] if is_uri(location) else location)
    except OSError:
        return
    sizes[location], times[location] = status.st_size, status.st_mtime_ns


def list_folder(folder: str) -> pa.Table:
    """Name, size and modification time (:data:`FOLDER_SCHEMA`) of every file directly in ``folder``;
    empty when the folder does not exist. A local folder of a million files lists in seconds."""
    if is_local(folder):
        return _local_folder(resolve(folder)[1])
    infos = [info for info in list_entries(folder) if info.type == pafs.FileType.File]
    return pa.table({"name": [posixpath.basename(info.path) for info in infos], "size": [info.size for info in infos],
                     "mtime_ns": [info.mtime_ns for info in infos]}, schema=FOLDER_SCHEMA)


def _local_folder(path: str) -> pa.Table:
    """:func:`list_folder` of a local folder, its entries turned into Arrow :data:`_CHUNK` at a time
    (a million names as Python strings at once would be about 150 MB)."""
    chunks, names, sizes, times = [], [], [], []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        status = entry.stat()
                        names.append(entry.name)
                        sizes.append(status.st_size)
                        times.append(status.st_mtime_ns)
                except OSError:
                    continue  # removed while listed: absent
                if len(names) == _CHUNK:
                    chunks.append(pa.table({"name": names, "size": sizes, "mtime_ns": times}, schema=FOLDER_SCHEMA))
                    names, sizes, times = [], [], []
    except FileNotFoundError:
        pass
    chunks.append(pa.table({"name": names, "size": sizes, "mtime_ns": times}, schema=FOLDER_SCHEMA))
    return pa.concat_tables(chunks).combine_chunks()


_CHUNK = 65_536
