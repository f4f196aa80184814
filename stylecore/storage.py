"""Where bytes live: local paths and object-store URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``).

Every file the library and the batch layer read or write goes through this module, so a local
path and a URI are handled alike. The file systems are pyarrow's (``pyarrow.fs.FileSystem.from_uri``),
already a dependency; no second file-system layer and no hand-written client.

- **Locations** are plain strings: a URI (``scheme://...``) or a local path, kept as given
  (local paths are made absolute). :func:`join` resolves a relative path against a root of
  either kind.
- **Credentials** come from each store's standard chain (for S3: the ``AWS_*`` environment
  variables, the shared profile, the instance role), read by pyarrow; this module never sees,
  prints or records them. Error messages name the location and the cause only.
- **Endpoint**: S3-compatible stores (MinIO, Ceph, R2) are reached through the standard
  ``AWS_ENDPOINT_URL`` variable, which the command lines' ``--storage-endpoint`` sets. An
  environment variable rather than a parameter, so that it reaches every reader in the library
  and, forwarded by the batch layer, every Ray worker, without threading an argument through
  each function.
- **Writes are whole or absent.** :func:`write_bytes` writes a local file beside its name and
  renames it into place (:mod:`stylecore.atomic`); an object is written with one
  ``open_output_stream``, whose (multipart) upload pyarrow completes only on ``close``, after the
  whole byte string was handed over in one ``write``: a writer that dies mid-upload leaves no
  object, and a reader never sees part of one.
- **Failures** of a store (a missing bucket, access denied, missing or wrong credentials, an
  unreachable endpoint) raise :class:`~stylecore.errors.StorageError` with one sentence. A
  missing file or object raises ``FileNotFoundError``, as ``open`` does, so that each reader
  says what was missing (a photo, a mask, a manifest).
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import functools
import io
import os
import posixpath
import re
import threading
import urllib.parse
from typing import BinaryIO

import pyarrow.fs as pafs

from stylecore.atomic import atomic_path
from stylecore.errors import StorageError

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
"""The standard variable naming an S3-compatible endpoint, e.g. ``http://minio.internal:9000``."""
_BUCKET_SCHEMES = ("s3", "gs", "gcs")
"""Schemes whose first path component is a bucket, each bucket's file system reused (:func:`resolve`)."""
REUSE_BYTES = 256 * 2**20
"""Most bytes of fetched objects :func:`read_bytes` keeps per process for reuse (least recently used go first)."""
_reused: collections.OrderedDict[tuple[str, str | None], bytes] = collections.OrderedDict()
_REUSE_LOCK = threading.Lock()
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ACCESS_CODES = ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "EXPIRED_TOKEN",
                 "INVALID_CLIENT_TOKEN_ID", "UNRECOGNIZED_CLIENT", "MISSING_AUTHENTICATION_TOKEN",
                 "No credentials")
_NETWORK_CODES = ("NETWORK_CONNECTION", "Couldn't connect", "curlCode", "Unable to connect", "UNKNOWN (HTTP status 0)")


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What a store says about one file or object without reading it."""

    size: int
    """Bytes."""
    etag: str | None
    """The object store's entity tag (changes whenever the object is rewritten with other bytes);
    ``None`` on a local file system, which has none."""


def is_uri(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` locations, False for local paths."""
    return bool(_URI.match(os.fspath(location)))


def is_local(location: str | os.PathLike[str]) -> bool:
    """True when ``location`` is on this machine's file system (a path or a ``file://`` URI)."""
    return not is_uri(location) or os.fspath(location).startswith("file://")


def absolute(location: str | os.PathLike[str]) -> str:
    """``location`` as it is recorded: a URI unchanged, a local path made absolute (``~`` expanded)."""
    location = os.fspath(location)
    return location if is_uri(location) else os.path.abspath(os.path.expanduser(location))


def join(root: str | os.PathLike[str], relative: str) -> str:
    """``relative`` resolved against the folder ``root`` (a URI or a local path).

    A ``relative`` that is itself a URI or an absolute path is returned as it is (made absolute).
    ``.`` and ``..`` are resolved, so ``join("s3://b/data", "../x.png")`` is ``s3://b/x.png``.
    """
    if is_uri(relative) or os.path.isabs(os.path.expanduser(relative)):
        return absolute(relative)
    root = absolute(root)
    if not is_uri(root):
        return os.path.normpath(os.path.join(root, relative))
    scheme, rest = root.split("://", 1)
    authority, _, folder = rest.partition("/")
    return f"{scheme}://{authority}/{posixpath.normpath(posixpath.join('/' + folder, relative)).lstrip('/')}"


def resolve(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """(pyarrow file system, path within it) for ``location``.

    S3 locations use ``$AWS_ENDPOINT_URL`` when it is set. Raises :class:`StorageError` for a
    scheme pyarrow does not know or a store it cannot set up.
    """
    location = absolute(location)
    if not is_uri(location):
        return pafs.LocalFileSystem(), location
    scheme, rest = location.split("://", 1)
    if scheme.lower() == "file":  # the path as written, like a key: not parsed, not percent-decoded
        return pafs.LocalFileSystem(), rest
    try:
        if scheme.lower() in _BUCKET_SCHEMES:
            bucket, _, key = rest.partition("/")
            filesystem, root = _bucket_filesystem(f"{scheme}://{bucket}", os.environ.get(ENDPOINT_VARIABLE))
            return filesystem, f"{root}/{key}" if key else root
        return pafs.FileSystem.from_uri(location)
    except (OSError, ValueError) as error:
        raise _store_error(error, location) from None


@functools.lru_cache(maxsize=64)
def _bucket_filesystem(bucket_uri: str, endpoint: str | None) -> tuple[pafs.FileSystem, str]:
    """The file system of one bucket, set up once per process: ``from_uri`` may ask AWS for the
    bucket's region, a request not to repeat for every file. Keys are appended as paths, never
    parsed as URIs, so spaces, ``?`` and ``#`` in them are safe."""
    if endpoint and bucket_uri.lower().startswith("s3://"):
        bucket_uri = f"{bucket_uri}?endpoint_override={urllib.parse.quote(endpoint, safe='')}"
    return pafs.FileSystem.from_uri(bucket_uri)


def open_input(location: str | os.PathLike[str]) -> BinaryIO:
    """A readable binary file of ``location``'s bytes; use it in a ``with`` block.

    Local files are opened in place (read lazily, so a header can be probed cheaply); an object
    is fetched whole with one request (a decoder's many small reads would each be a request), or
    taken from :func:`read_bytes`'s reuse of a recent fetch.
    """
    if not is_uri(location):
        return open(absolute(location), "rb")
    return io.BytesIO(read_bytes(location))


def read_bytes(location: str | os.PathLike[str]) -> bytes:
    """The whole content of ``location``. ``FileNotFoundError`` when absent; :class:`StorageError`
    when its store cannot be reached or refuses.

    An object's bytes are kept for reuse while its entity tag is unchanged (the last
    :data:`REUSE_BYTES` fetched, per process): a later read asks for the tag (HEAD) and downloads
    nothing when it is the same, since an object with the same ETag holds the same bytes
    (:mod:`ray_jobs.outputs` argues it). So a photo whose header was probed and which is then
    decoded, or a style photo shared by many rows of one worker, is downloaded once.
    """
    filesystem, path = resolve(location)
    try:
        if isinstance(filesystem, pafs.LocalFileSystem):
            with filesystem.open_input_stream(path) as stream:
                return stream.readall()
        with filesystem.open_input_file(path) as handle:  # a HEAD request: size and entity tag
            key = (absolute(location), handle.metadata().get("ETag"))
            with _REUSE_LOCK:
                if key[1] is not None and key in _reused:
                    _reused.move_to_end(key)
                    return _reused[key]
            data = handle.readall()
        _keep(key, data)
        return data
    except FileNotFoundError:
        raise _not_found(filesystem, location) from None
    except OSError as error:
        raise _store_error(error, location) from None


def _keep(key: tuple[str, str | None], data: bytes) -> None:
    if key[1] is None or len(data) > REUSE_BYTES:
        return
    with _REUSE_LOCK:
        _reused[key] = data
        while sum(len(kept) for kept in _reused.values()) > REUSE_BYTES:
            _reused.popitem(last=False)


def write_bytes(location: str | os.PathLike[str], data: bytes) -> None:
    """Store ``data`` at ``location``, replacing what is there, whole or not at all (module docstring)."""
    location = absolute(location)
    if is_local(location):
        with atomic_path(resolve(location)[1], keep_suffix=False) as temporary:  # bytes: no format to infer
            temporary.write_bytes(data)
        return
    filesystem, path = resolve(location)
    try:
        stream = filesystem.open_output_stream(path)
        stream.write(data)
        stream.close()
    except OSError as error:
        raise _store_error(error, location) from None


def remove(location: str | os.PathLike[str]) -> None:
    """Delete the file or object at ``location``; one already absent is no error."""
    filesystem, path = resolve(location)
    try:
        filesystem.delete_file(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise _store_error(error, location) from None


def stat(location: str | os.PathLike[str]) -> ObjectInfo | None:
    """Size (and entity tag, for objects) of the file at ``location``, without reading it; ``None`` if absent."""
    filesystem, path = resolve(location)
    try:
        if isinstance(filesystem, pafs.LocalFileSystem):
            info = filesystem.get_file_info(path)
            return ObjectInfo(size=info.size, etag=None) if info.type == pafs.FileType.File else None
        with filesystem.open_input_file(path) as handle:  # one HEAD request: size and entity tag, no body
            metadata = handle.metadata()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _store_error(error, location) from None
    etag = metadata.get("ETag")
    return ObjectInfo(size=int(metadata["Content-Length"]), etag=None if etag is None else etag.decode())


def exists(location: str | os.PathLike[str]) -> bool:
    """True when a file or object is at ``location``."""
    return stat(location) is not None


def list_files(folder: str | os.PathLike[str], pattern: str) -> list[str]:
    """Locations of the files directly in ``folder`` whose names match the glob ``pattern``, sorted.

    On an object store this lists the one prefix ``folder``, never the whole bucket. A missing
    folder gives an empty list.
    """
    folder = absolute(folder)
    names = sorted(posixpath.basename(info.path) for info in list_entries(folder) if info.type == pafs.FileType.File)
    return [join(folder, name) for name in names if fnmatch.fnmatch(name, pattern)]


def list_entries(folder: str | os.PathLike[str]) -> list[pafs.FileInfo]:
    """What is directly in ``folder``, as pyarrow lists it: path, type, size and modification time of
    each entry, no bytes read; one listing of the prefix in an object store. Empty for a missing folder."""
    filesystem, path = resolve(folder)
    try:
        return filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except OSError as error:
        raise _store_error(error, os.fspath(folder)) from None


def check_reachable(location: str | os.PathLike[str]) -> None:
    """Raise :class:`StorageError` unless ``location``'s store answers: for S3 and GCS, its bucket
    exists and the credentials are accepted (one HEAD request); for other stores, a connection can
    be set up. Local paths pass (a local folder is created when written)."""
    location = absolute(location)
    if is_local(location):
        return
    filesystem, path = resolve(location)
    if location.split("://", 1)[0].lower() not in _BUCKET_SCHEMES:
        return
    bucket = path.split("/", 1)[0]
    try:
        found = filesystem.get_file_info(bucket).type != pafs.FileType.NotFound
    except OSError as error:
        raise _store_error(error, location) from None
    if not found:
        raise StorageError(f"{location}: the bucket {bucket!r} does not exist (or is not visible to these "
                           "credentials).")


def _not_found(filesystem: pafs.FileSystem, location: str) -> Exception:
    """A missing object's error: FileNotFoundError, or StorageError when its whole bucket is missing."""
    if not isinstance(filesystem, pafs.LocalFileSystem):
        try:
            check_reachable(location)
        except StorageError as error:
            return error
    return FileNotFoundError(2, "no such file or object", location)


def _store_error(error: Exception, location: str) -> StorageError:
    text = " ".join(str(error).split())
    if any(code in text for code in _ACCESS_CODES):
        return StorageError(f"{location}: access denied; the credentials (environment, profile or instance "
                            "role) are missing, wrong or lack permission for it.")
    if "NO_SUCH_BUCKET" in text:
        return StorageError(f"{location}: the bucket does not exist.")
    if any(code in text for code in _NETWORK_CODES):
        endpoint = os.environ.get(ENDPOINT_VARIABLE) or "the default endpoint"
        return StorageError(f"{location}: cannot reach the object store at {endpoint} ({text}).")
    return StorageError(f"{location}: {text}")


