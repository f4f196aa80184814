"""Photo input and output: any common file in, float RGB in [0, 1] at the working size out."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stylecore.errors import InputImageError
from stylecore.storage import open_input, write_bytes

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def working_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the longer side is ``long_side``, aspect ratio kept."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photo (a path or an object-store URI) as float32 RGB, shape (H, W, 3), values in [0, 1].

    EXIF orientation is applied; greyscale is repeated on three channels; alpha is composited
    over white (what a viewer shows); 16-bit greyscale keeps its precision.
    """
    try:
        with open_input(path) as stream, Image.open(stream) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except FileNotFoundError:
        raise InputImageError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputImageError(f"cannot read image {path}: {error}") from None
    if image.width == 0 or image.height == 0:
        raise InputImageError(f"image {path} is empty")
    return _to_float_rgb(image)


def _to_float_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize float RGB ``image`` to ``shape`` = (height, width) with Lanczos filtering, clipped to [0, 1]."""
    if image.shape[:2] == tuple(shape):
        return image.astype(np.float32, copy=False)
    channels = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F")
                           .resize((shape[1], shape[0]), Image.Resampling.LANCZOS))
                for c in range(image.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


def load_image(path: str | os.PathLike[str], long_side: int) -> np.ndarray:
    """Read a photo and resize it so its long side is ``long_side`` px; float32 RGB in [0, 1]."""
    image = read_image(path)
    return resize_image(image, working_shape(*image.shape[:2], long_side))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] to 8-bit, rounding to nearest."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Float RGB in [0, 1] as the bytes of an 8-bit PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write float RGB in [0, 1] as an 8-bit PNG to a path or URI, whole or not at all (:mod:`stylecore.storage`)."""
    write_bytes(path, encode_png(image))
