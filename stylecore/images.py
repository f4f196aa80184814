"""Photo input: any common file in, RGB at its own size (8-bit as decoded) and at the working size
(float in [0, 1]) out.

Reading does what a careful photo viewer does, so that the pixels styled are the pixels a user
sees: EXIF orientation is applied; an embedded ICC profile (Display P3, Adobe RGB, a CMYK press
profile ...) is converted to sRGB with LittleCMS (Pillow's ImageCms; an unreadable profile is
ignored, as browsers do); CMYK without a profile is converted with Pillow's formula; greyscale is
repeated on three channels; a palette image is expanded. 16-bit greyscale keeps its precision, and
so does 16-bit colour PNG, which Pillow cuts to 8 bits: it is decoded with pypng instead, unless it
carries an ICC profile (the conversion to sRGB then runs on Pillow's 8-bit pixels: right colours
before extra precision).
Transparency is composited onto white, what viewers show behind a transparent photo; the alpha
channel itself is not used (a style transfer has no use for it, and refusing such files would
refuse most exported PNGs for nothing).

A photo is decoded once, at its own size, and kept in the bits it has (:func:`read_photo`): uint8
for 8-bit files (3 bytes a pixel rather than float32's 12, and no conversion pass over 24 MP),
float32 for 16-bit ones. The working-size copy is made from that decode
(:func:`resize_image`), and the full-size output is computed from it directly
(:func:`stylecore.local_affine.apply_local_affine`).

Files that cannot be used are refused with one sentence (:class:`InputImageError`): missing,
empty, truncated or not an image, more pixels than ``max_pixels`` (a decompression bomb: a small
file that would decode to gigabytes), or, for photos to restyle, a long side under
:data:`MIN_PHOTO_LONG_SIDE`. :func:`probe_image` makes every check that needs only the header, in
milliseconds, before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterator

import numpy as np
import png
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from stylecore.config import TransferConfig
from stylecore.errors import InputImageError, StorageError
from stylecore.storage import open_input, stat

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_ICC_MODES = ("RGB", "L", "CMYK")
_SWAPS_AXES = (5, 6, 7, 8)
"""EXIF orientations that turn the stored image by 90 degrees (width and height swap on display)."""
_UPRIGHT = {1: lambda pixels: pixels, 2: lambda pixels: pixels[:, ::-1], 3: lambda pixels: pixels[::-1, ::-1],
            4: lambda pixels: pixels[::-1], 5: lambda pixels: pixels.transpose(1, 0, 2),
            6: lambda pixels: np.rot90(pixels, -1), 7: lambda pixels: pixels[::-1, ::-1].transpose(1, 0, 2),
            8: lambda pixels: np.rot90(pixels, 1)}
"""Stored (H, W, C) pixels to displayed ones, per EXIF orientation (EXIF 2.3, tag 0x0112), for the
pixels Pillow does not decode (:func:`_deep_png`); Pillow's ``exif_transpose`` does the others."""
_DEEP_PNG_RAWMODES = ("RGB;16B", "RGBA;16B", "LA;16B")
_DECODING_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error,
                    png.Error)
"""What Pillow's decoders and pypng raise on a corrupt or truncated file (Pillow's ``Image.open`` turns
the same list, raised by a plugin, into ``UnidentifiedImageError``)."""
_EXIF_ORIENTATION = 0x0112
SRGB_PROFILE = ImageCms.createProfile("sRGB")
"""The profile every photo is converted to when read, and which written results carry."""
_PILLOW_LIMIT = threading.RLock()
REDUCING_GAP = 3.0
"""A uint8 photo is shrunk by whole-block means to no less than this many times the working size
before the Lanczos filter (:func:`resize_image`); Pillow's documentation finds results from 3 on
indistinguishable from the filter alone."""
MIN_PHOTO_LONG_SIDE = 64
"""Smallest long side, in px, of a photo to restyle. Smaller ones are refused, not upscaled: a 3x3
photo blown up to the working size holds no detail to restyle, and its "result" would mislead."""


def working_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the longer side is ``long_side``, aspect ratio kept."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@contextlib.contextmanager
def open_checked(path: str | os.PathLike[str], *, what: str, max_pixels: int) -> Iterator[Image.Image]:
    """Open ``path`` (a local path, or an object-store URI: :mod:`stylecore.storage`) with Pillow, header
    only, and refuse it unless it is an image of at most ``max_pixels``.

    ``what`` ("image", "mask") names the file in the messages. Nothing is decoded before the limit
    is checked. Pillow's own process-wide limit (``Image.MAX_IMAGE_PIXELS``: a warning from 89 MP
    and, on opening and on some decoders' frames, an error from 179 MP that names neither figure)
    is lifted while the file is open, under a lock, so that ``max_pixels`` is the one limit.
    """
    with _pillow_limit_lifted():
        try:
            stream = open_input(path)
        except FileNotFoundError:
            raise InputImageError(f"{what} not found: {path}") from None
        with stream:
            try:
                opened = Image.open(stream)
            except UnidentifiedImageError:
                raise InputImageError(f"cannot read {what} {path}: the file is {_unidentified(path)}") from None
            except _DECODING_ERRORS as error:
                raise InputImageError(f"cannot read {what} {path}: {error}") from None
            with opened:
                yield _checked(opened, what=what, path=path, max_pixels=max_pixels)


@contextlib.contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    with _PILLOW_LIMIT:
        pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit


def _checked(opened: Image.Image, *, what: str, path: str | os.PathLike[str], max_pixels: int) -> Image.Image:
    width, height = opened.size
    if width == 0 or height == 0:
        raise InputImageError(f"{what} {path} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputImageError(
            f"{what} {path} has {width * height:,} pixels ({width}x{height}), more than the limit of "
            f"{max_pixels:,} (max_image_pixels): if the file is trusted, raise --max-image-pixels")
    return opened


def _unidentified(path: str | os.PathLike[str]) -> str:
    with contextlib.suppress(OSError, StorageError):
        if getattr(stat(path), "size", None) == 0:
            return "empty"
    return "not an image in a format Pillow reads (PNG, JPEG, TIFF, WebP, ...)"


def header_exif(image: Image.Image) -> Image.Exif:
    """The EXIF of an opened image, read from its header: for a PNG, only an eXIf chunk before the
    pixels (where the PNG specification puts it); Pillow would decode all the pixels to look for
    one after them."""
    if image.format == "PNG" and "exif" not in image.info:
        return Image.Exif()
    return image.getexif()


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image (1: as stored), read from its header."""
    return header_exif(image).get(_EXIF_ORIENTATION, 1)


def displayed_shape(image: Image.Image) -> tuple[int, int]:
    """(height, width) of an opened image as displayed, its EXIF orientation applied; header only."""
    width, height = image.size
    return (width, height) if _orientation(image) in _SWAPS_AXES else (height, width)


def probe_image(path: str | os.PathLike[str], *, what: str = "image",
                max_pixels: int = TransferConfig.max_image_pixels) -> tuple[int, int]:
    """(height, width) of a photo or mask file as displayed, after :func:`open_checked`'s checks.

    Reads the header only (milliseconds whatever the size): a truncated file passes here and is
    refused by :func:`read_image` when its pixels are decoded.
    """
    with open_checked(path, what=what, max_pixels=max_pixels) as opened:
        return displayed_shape(opened)


def decoded(opened: Image.Image, *, what: str, path: str | os.PathLike[str]) -> Image.Image:
    """The pixels of an :func:`open_checked` image, decoded and turned upright by its EXIF orientation
    in place (no copy of a 24 MP photo): ``opened`` itself, to be used before the file is closed."""
    try:
        opened.load()
        ImageOps.exif_transpose(opened, in_place=True)
    except _DECODING_ERRORS as error:
        raise InputImageError(f"cannot decode {what} {path}, truncated or corrupt: {error}") from None
    return opened


def without_alpha(image: Image.Image) -> Image.Image:
    """``image`` composited onto white if it has transparency (an alpha channel or a transparent
    palette entry), as RGB; otherwise ``image`` itself."""
    if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image


def read_photo(path: str | os.PathLike[str], *, what: str = "image",
               max_pixels: int = TransferConfig.max_image_pixels) -> np.ndarray:
    """Read a photo as sRGB, shape (H, W, 3), at its stored size (upright), in the bits it holds:
    uint8 (0 to 255) from an 8-bit file, float32 in [0, 1] from a 16-bit one.

    See the module docstring for what is converted and what is refused; ``what`` names the file
    in messages ("content photo").
    """
    with open_checked(path, what=what, max_pixels=max_pixels) as opened:
        icc = opened.info.get("icc_profile")
        if not icc and opened.format == "PNG" and opened.tile and opened.tile[0].args in _DEEP_PNG_RAWMODES:
            return _deep_png(opened, what, path)
        return _to_rgb(decoded(opened, what=what, path=path), icc)


def read_image(path: str | os.PathLike[str], *, what: str = "image",
               max_pixels: int = TransferConfig.max_image_pixels) -> np.ndarray:
    """:func:`read_photo` as float32 RGB in [0, 1], shape (H, W, 3)."""
    return to_float(read_photo(path, what=what, max_pixels=max_pixels))


def _deep_png(opened: Image.Image, what: str, path: str | os.PathLike[str]) -> np.ndarray:
    """A 16-bit colour PNG opened by Pillow, decoded at full precision with pypng: float32 (H, W, 3),
    upright, transparency composited onto white."""
    opened.fp.seek(0)
    try:
        width, height, rows, info = png.Reader(file=opened.fp).asDirect()
        pixels = np.vstack([np.asarray(row, np.float32) for row in rows])
    except _DECODING_ERRORS as error:
        raise InputImageError(f"cannot decode {what} {path}, truncated or corrupt: {error}") from None
    pixels = pixels.reshape(height, width, info["planes"]) / float(2 ** info["bitdepth"] - 1)
    if info["alpha"]:
        alpha = pixels[..., -1:]
        pixels = pixels[..., :-1] * alpha + (1.0 - alpha)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(_UPRIGHT.get(_orientation(opened), _UPRIGHT[1])(pixels), dtype=np.float32)


def _to_rgb(image: Image.Image, icc: bytes | None) -> np.ndarray:
    """A decoded image as (H, W, 3) sRGB: float32 in [0, 1] for 16-bit greyscale, else uint8."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
    image = without_alpha(image)
    if image.mode == "P":
        image = image.convert("RGB")
    if icc and image.mode in _ICC_MODES:
        image = _to_srgb(image, icc)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """``image`` converted from its embedded ICC profile to sRGB (perceptual intent), as RGB."""
    try:
        return ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB_PROFILE,
                                         outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def check_photo_size(shape: tuple[int, int], *, what: str = "photo") -> None:
    """Refuse a photo whose long side is under :data:`MIN_PHOTO_LONG_SIDE`; ``shape`` = (height, width)."""
    if max(shape) < MIN_PHOTO_LONG_SIDE:
        raise InputImageError(f"{what} is {shape[1]}x{shape[0]} px; a photo to restyle needs a long side "
                              f"of at least {MIN_PHOTO_LONG_SIDE} px (it is not upscaled)")


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize RGB ``image``, float in [0, 1] or uint8, to ``shape`` = (height, width) with Lanczos
    filtering; float32 in [0, 1] out (``image`` as float when the shape is its own).

    A uint8 photo shrunk more than :data:`REDUCING_GAP` times is first reduced by the largest
    whole factor that leaves at least that ratio to the filter (means of factor x factor blocks,
    Pillow's ``reduce``, rounded to 8 bits), as Pillow's own ``reducing_gap`` does: the Lanczos
    filter's cost grows with the ratio, over every pixel of the source. Channels are filtered as
    float one at a time, so that a large photo is never held as float whole.
    """
    if image.shape[:2] == tuple(shape):
        return to_float(image)
    height, width = image.shape[:2]
    box = (0.0, 0.0, float(width), float(height))
    if image.dtype == np.uint8:
        factors = (max(1, int(width / shape[1] / REDUCING_GAP)), max(1, int(height / shape[0] / REDUCING_GAP)))
        if factors != (1, 1):
            image = np.asarray(Image.fromarray(image).reduce(factors))
            box = (0.0, 0.0, width / factors[0], height / factors[1])
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(to_float(image[..., c])))
                           .resize((shape[1], shape[0]), Image.Resampling.LANCZOS, box=box))
                for c in range(image.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


def load_image(path: str | os.PathLike[str], long_side: int) -> np.ndarray:
    """Read a photo and resize it so its long side is ``long_side`` px; float32 RGB in [0, 1]."""
    photo = read_photo(path)
    return resize_image(photo, working_shape(*photo.shape[:2], long_side))


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 (0 to 255) to float32 in [0, 1]; a float array as float32, unchanged otherwise."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32, copy=False)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] to 8-bit, rounding to nearest."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)

