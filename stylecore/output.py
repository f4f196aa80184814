"""Where results are written: the format follows the file's extension, and the content photo's
colour profile and EXIF travel with the result, as a photographer expects of an edit.

- PNG (lossless; the default of the batch job). Large images are compressed at zlib level 1: at
  24 MP, level 6 (Pillow's default) took several times as long as the transfer's own upsampling,
  for a file about 10 % smaller (``benchmarks/full_resolution.py`` prints both).
- JPEG at a chosen quality (default 95, 4:4:4 chroma: no colour bleeding at segment borders).
- TIFF (uncompressed, 8 bits per channel).

A content photo with an ICC profile gives a result tagged sRGB: the readers convert every tagged
photo to sRGB (:func:`stylecore.images.read_image`), so that is the space of the result's values;
an untagged content gives an untagged result (sRGB by convention). Its EXIF is kept with the orientation reset to 1,
because the readers apply the rotation to the pixels (:func:`stylecore.images.read_image`), and
with the pixel dimensions set to the result's.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from stylecore.errors import InputImageError, OutputError
from stylecore.images import SRGB_PROFILE, header_exif
from stylecore.storage import open_input, write_bytes

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
"""Output formats by lower-case file extension."""
DEFAULT_JPEG_QUALITY = 95
FAST_PNG_PIXELS = 4_000_000
"""PNGs of more pixels than this are compressed at zlib level 1 rather than Pillow's default 6."""

_SRGB_ICC = ImageCms.ImageCmsProfile(SRGB_PROFILE).tobytes()
_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION = 0xA002, 0xA003


@dataclasses.dataclass(frozen=True)
class PhotoMetadata:
    """What a written result carries over from its content photo; both ``None`` for array inputs."""

    icc_profile: bytes | None = None
    """sRGB's profile when the content photo carried one (see the module docstring), else ``None``."""
    exif: bytes | None = None
    """Raw EXIF (TIFF-structured bytes, as Pillow reads them), orientation included as stored."""


def read_metadata(path: str | os.PathLike[str]) -> PhotoMetadata:
    """The ICC profile and EXIF of the photo at ``path``, read from its header (no pixel decoding:
    :func:`stylecore.images.header_exif`)."""
    try:
        with open_input(path) as stream, Image.open(stream) as opened:
            exif = header_exif(opened)
            tagged = bool(opened.info.get("icc_profile"))
            return PhotoMetadata(icc_profile=_SRGB_ICC if tagged else None,
                                 exif=exif.tobytes() if len(exif) else None)
    except FileNotFoundError:
        raise InputImageError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputImageError(f"cannot read image {path}: {error}") from None


def output_format(path: str | os.PathLike[str]) -> str:
    """Pillow's format name for ``path``'s extension; :class:`OutputError` for one not in :data:`FORMATS`."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(f"cannot write {path}: the extension must be one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def _result_exif(exif: bytes, size: tuple[int, int]) -> bytes:
    """``exif`` with orientation 1 (pixels are stored upright) and the pixel dimensions of ``size``."""
    tags = Image.Exif()
    tags.load(exif)
    if _ORIENTATION in tags:
        tags[_ORIENTATION] = 1
    details = tags.get_ifd(_EXIF_IFD)
    if details:
        details[_PIXEL_X_DIMENSION], details[_PIXEL_Y_DIMENSION] = size
    return tags.tobytes()


def encode_image(image: np.ndarray, file_format: str, metadata: PhotoMetadata = PhotoMetadata(), *,
                 jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """``image`` (H, W, 3) uint8 RGB encoded as ``file_format`` (a value of :data:`FORMATS`) with ``metadata``."""
    picture = Image.fromarray(image, mode="RGB")
    options: dict[str, object] = {}
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif:
        options["exif"] = _result_exif(metadata.exif, picture.size)
    if file_format == "PNG":
        options["compress_level"] = 1 if picture.width * picture.height > FAST_PNG_PIXELS else 6
    elif file_format == "JPEG":
        options.update(quality=jpeg_quality, subsampling=0)
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format, **options)
    return buffer.getvalue()


def write_image(path: str | os.PathLike[str], image: np.ndarray, metadata: PhotoMetadata = PhotoMetadata(), *,
                jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> None:
    """Write ``image`` (H, W, 3) uint8 to ``path`` (a path or URI) in the format its extension names,
    whole or not at all (:mod:`stylecore.storage`)."""
    write_bytes(path, encode_image(image, output_format(path), metadata, jpeg_quality=jpeg_quality))
