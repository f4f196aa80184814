"""Colour-coded segmentation masks to clean label maps, and the pairing of segments across a pair.

Real masks are messy (ALGORITHM.md, "Masks"): anti-aliased edges with thousands of in-between
colours, JPEG noise, greyscale files, a mask one pixel off its photo's size. A mask file is read as a
photo is (:mod:`stylecore.images`): EXIF orientation applied, transparency composited onto white,
palette expanded, 16-bit values scaled to 8 bits; colours are labels, so no ICC conversion.

Refused with one sentence (:class:`InputImageError`): a mask whose shape is not its photo's
at some scale (see :func:`check_mask_shape`), and a mask whose pixels are mostly far from every
palette colour (it was not drawn with the palette, so no label could be trusted). Cleaning is:

1. snap every pixel to the nearest palette colour in use (Euclidean in RGB; see
   :func:`snap_to_palette`);
2. resize to the photo's working size with nearest-neighbour (labels must not blend);
3. merge specks: every connected component smaller than ``min_segment_fraction`` of the image is
   given the label of the nearest pixel outside such specks (so anti-aliasing slivers vanish).

Labels are indices into :data:`PALETTE`. "No masks" is one segment, label 0, on both sides.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from PIL import Image

from stylecore.config import TransferConfig
from stylecore.errors import InputImageError
from stylecore.images import decoded, open_checked, without_alpha

PALETTE: dict[str, tuple[int, int, int]] = {
    "blue": (0, 0, 255),
    "green": (0, 255, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "yellow": (255, 255, 0),
    "grey": (128, 128, 128),
    "lightblue": (0, 255, 255),
    "purple": (255, 0, 255),
}
PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array(list(PALETTE.values()), dtype=np.int32)
CLOSE_MATCH = 40
"""RGB distance within which a pixel counts as showing a palette colour (JPEG noise, not blends)."""
MAX_OFF_PALETTE_SHARE = 0.5
"""Largest share of a mask's pixels that may lie farther than :data:`CLOSE_MATCH` from every palette
colour. Anti-aliased borders and JPEG noise stay far below it (at most a few percent in the
example masks); a mask drawn in other colours is far above it."""
COUNTED_BY_TABLE_PIXELS = 4_000_000
"""Masks of more pixels than this count their colours in a table of all 2^24 colours (linear time,
``np.bincount``) rather than by sorting the pixels (``np.unique``): at 24 MP 0.2 s against 1.3 s
of CPU (4 s on the busy machine); at 700 px the 128 MB table would cost 56 ms against 8 ms."""
SHAPE_TOLERANCE_PX = 3
SHAPE_TOLERANCE_FRACTION = 0.02
"""A mask's short side may differ from its photo's, at the mask's scale, by 1 px whatever the size,
or by up to :data:`SHAPE_TOLERANCE_PX` px when that is also within this fraction."""


@dataclasses.dataclass(frozen=True)
class MaskDiagnostics:
    """What cleaning did to one mask; counts are in pixels of the working size unless stated."""

    source_shape: tuple[int, int]
    """(height, width) of the mask file as stored."""
    photo_shape: tuple[int, int]
    """(height, width) of its photo as stored; differs from ``source_shape`` for off-by-one masks."""
    distinct_colours: int
    """Distinct colours in the file (9 or fewer for a clean mask)."""
    snapped_fraction: float
    """Fraction of the file's pixels whose colour was not exactly a palette colour."""
    dropped_specks: int
    """Connected components merged into their neighbours for being smaller than the minimum."""
    dropped_fraction: float
    """Fraction of the working-size pixels relabelled by speck merging."""
    labels: tuple[str, ...]
    """Palette names present after cleaning."""
    dropped_labels: tuple[str, ...] = ()
    """Palette names the snapped mask had at working size that speck merging removed: segments
    every piece of which was under ``min_segment_fraction`` of the image (a fallback,
    :mod:`stylecore.fallbacks`)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PairDiagnostics:
    """Both masks' diagnostics and how their segments were paired."""

    content: MaskDiagnostics | None
    style: MaskDiagnostics | None
    matched: tuple[str, ...]
    """Labels in both masks: styled segment by segment."""
    content_only: tuple[str, ...]
    """Labels only in the content mask: styled per ``content_only_policy``."""
    style_only: tuple[str, ...]
    """Labels only in the style mask: ignored."""
    automatic: bool = False
    """The label maps came from automatic segment matching (:mod:`stylecore.segment_matching`), not mask files."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def snap_to_palette(mask_rgb: np.ndarray, min_fraction: float = 0.0, *,
                    what: str = "mask") -> tuple[np.ndarray, int, float]:
    """Label each pixel of an (H, W, 3) uint8 mask with its nearest palette colour in use.

    A palette colour is in use when at least ``min_fraction`` of the pixels lie within
    :data:`CLOSE_MATCH` of it. Snapping only to colours in use keeps anti-aliased borders from
    becoming segments of their own: a 191-grey pixel between black and white goes to white,
    not to the palette's 128-grey, unless the mask really has a grey segment.
    Returns (labels (H, W) uint8, distinct colour count, fraction of pixels not exactly on the palette).
    Works on the distinct colours only, so cost is one count of the pixels' colours
    (:func:`_distinct_colours`). Raises
    :class:`InputImageError` (naming ``what``) when over :data:`MAX_OFF_PALETTE_SHARE` of the pixels
    are far from every palette colour, naming the commonest such colour and its share.
    """
    packed = (mask_rgb[..., 0].astype(np.int32) << 16) | (mask_rgb[..., 1].astype(np.int32) << 8) \
        | mask_rgb[..., 2].astype(np.int32)
    colours, inverse, counts = _distinct_colours(packed.ravel())
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
    distances = ((rgb[:, None, :] - _PALETTE_RGB[None, :, :]) ** 2).sum(axis=2)
    close = distances <= CLOSE_MATCH ** 2
    _check_on_palette(rgb, counts, close.any(axis=1), what)
    in_use = (counts[:, None] * close).sum(axis=0) >= max(1.0, min_fraction * packed.size)
    if not in_use.any():
        in_use[:] = True
    nearest = np.where(in_use[None, :], distances, np.iinfo(np.int32).max).argmin(axis=1).astype(np.uint8)
    snapped_fraction = float(counts[distances.min(axis=1) > 0].sum() / packed.size)
    return nearest[inverse].reshape(packed.shape), len(colours), snapped_fraction


def _distinct_colours(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(packed, return_inverse=True, return_counts=True)`` of (N,) 24-bit colours, by a
    table of every colour for more than :data:`COUNTED_BY_TABLE_PIXELS` of them."""
    if packed.size <= COUNTED_BY_TABLE_PIXELS:
        return np.unique(packed, return_inverse=True, return_counts=True)
    table = np.bincount(packed)
    colours = np.flatnonzero(table)
    index = np.zeros(table.size, np.int32)
    index[colours] = np.arange(colours.size)
    return colours, index[packed], table[colours]


def _check_on_palette(rgb: np.ndarray, counts: np.ndarray, on_palette: np.ndarray, what: str) -> None:
    """Refuse a mask whose distinct colours ``rgb`` (N, 3), seen ``counts`` (N,) times, are mostly off the palette."""
    total = counts.sum()
    off_share = counts[~on_palette].sum() / total
    if off_share <= MAX_OFF_PALETTE_SHARE:
        return
    commonest = np.flatnonzero(~on_palette)[counts[~on_palette].argmax()]
    red, green, blue = (int(value) for value in rgb[commonest])
    raise InputImageError(
        f"{what} is mostly not in the mask palette: {off_share:.0%} of its pixels are far from every palette "
        f"colour, the commonest being RGB ({red}, {green}, {blue}) at {counts[commonest] / total:.0%}; "
        f"colour the segments with {', '.join(f'{name} {PALETTE[name]}' for name in PALETTE_NAMES)}")


def merge_specks(labels: np.ndarray, min_pixels: int) -> tuple[np.ndarray, int, int]:
    """Relabel connected components (4-connected) smaller than ``min_pixels`` from their nearest neighbours.

    The largest component of the whole map is always kept, so the result is never empty.
    Returns (labels, number of components merged, number of pixels relabelled).
    """
    # Imported here: scipy.ndimage takes 0.3 s to import, and the command line's checks of a
    # pair's files (which import this module) must stay well under a second.
    from scipy import ndimage

    speck = np.zeros(labels.shape, dtype=bool)
    largest = (0, None)
    components = 0
    for label in np.unique(labels):
        component_map, count = ndimage.label(labels == label)
        sizes = np.bincount(component_map.ravel())[1:]
        small = np.flatnonzero(sizes < min_pixels) + 1
        speck |= np.isin(component_map, small)
        components += len(small)
        if sizes.max() > largest[0]:
            largest = (sizes.max(), component_map == sizes.argmax() + 1)
    speck &= ~largest[1]
    if not speck.any():
        return labels, 0, 0
    _, (rows, cols) = ndimage.distance_transform_edt(speck, return_indices=True)
    return labels[rows, cols], components, int(speck.sum())


def read_mask(path: str | os.PathLike[str], *, what: str = "mask",
              max_pixels: int = TransferConfig.max_image_pixels) -> np.ndarray:
    """A mask file as (H, W, 3) uint8 RGB, upright (see the module docstring for the conversions);
    ``what`` names the file in messages ("content mask")."""
    with open_checked(path, what=what, max_pixels=max_pixels) as opened:
        image = decoded(opened, what=what, path=path)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            grey = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        image = without_alpha(image)
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def check_mask_shape(mask_shape: tuple[int, int], photo_shape: tuple[int, int], *, what: str = "mask") -> None:
    """Refuse a mask that is not its photo at some scale; shapes are (height, width) as displayed.

    The photo is scaled to the mask along the photo's long axis; the other axis must then agree
    within 1 px, or within :data:`SHAPE_TOLERANCE_PX` px and :data:`SHAPE_TOLERANCE_FRACTION`.
    A mask one pixel short (example pair 7) passes; a mask of half its photo's width does not.
    """
    (mask_height, mask_width), (photo_height, photo_width) = mask_shape, photo_shape
    if photo_width >= photo_height:
        expected, actual = photo_height * mask_width / photo_width, mask_height
    else:
        expected, actual = photo_width * mask_height / photo_height, mask_width
    off = abs(actual - expected)
    if off > 1 and (off > SHAPE_TOLERANCE_PX or off > SHAPE_TOLERANCE_FRACTION * expected):
        raise InputImageError(
            f"{what} is {mask_width}x{mask_height} px but its photo is {photo_width}x{photo_height} px, "
            f"a different shape (more than {SHAPE_TOLERANCE_PX} px or {SHAPE_TOLERANCE_FRACTION:.0%} off "
            "at any scale); give a mask drawn on the photo itself")


def clean_label_map(mask_rgb: np.ndarray, *, photo_shape: tuple[int, int], working_shape: tuple[int, int],
                    min_segment_fraction: float, what: str = "mask") -> tuple[np.ndarray, MaskDiagnostics]:
    """Clean an (H, W, 3) uint8 colour-coded mask (module docstring) into a label map of ``working_shape``.

    ``photo_shape`` is the stored (height, width) of the mask's photo: a mask of another shape is
    refused (:func:`check_mask_shape`), one within its tolerance is resized to the photo and the
    two shapes are recorded. ``what`` names the mask in error messages.
    """
    if mask_rgb.ndim != 3 or mask_rgb.shape[2] != 3 or mask_rgb.size == 0:
        raise InputImageError(f"a mask must be a non-empty (H, W, 3) RGB image, got shape {mask_rgb.shape}")
    check_mask_shape(mask_rgb.shape[:2], photo_shape, what=what)
    labels, distinct, snapped_fraction = snap_to_palette(mask_rgb, min_segment_fraction, what=what)
    resized = resize_labels(labels, working_shape)
    min_pixels = max(1, int(round(min_segment_fraction * resized.size)))
    cleaned, specks, relabelled = merge_specks(resized, min_pixels)
    kept = label_names(cleaned)
    diagnostics = MaskDiagnostics(
        source_shape=tuple(mask_rgb.shape[:2]), photo_shape=tuple(photo_shape),
        distinct_colours=distinct, snapped_fraction=snapped_fraction, dropped_specks=specks,
        dropped_fraction=relabelled / cleaned.size, labels=kept,
        dropped_labels=tuple(label for label in label_names(resized) if label not in kept))
    return cleaned, diagnostics


def load_label_map(path: str | os.PathLike[str], *, photo_shape: tuple[int, int],
                   working_shape: tuple[int, int],
                   min_segment_fraction: float) -> tuple[np.ndarray, MaskDiagnostics]:
    """Read a mask file and clean it with :func:`clean_label_map`."""
    return clean_label_map(read_mask(path), photo_shape=photo_shape, working_shape=working_shape,
                           min_segment_fraction=min_segment_fraction, what=f"mask {path}")


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label map resized to ``shape`` = (height, width) with nearest-neighbour sampling."""
    return np.asarray(Image.fromarray(labels.astype(np.uint8)).resize(
        (shape[1], shape[0]), Image.Resampling.NEAREST))


def label_map_to_rgb(labels: np.ndarray) -> np.ndarray:
    """An (H, W) label map as an (H, W, 3) uint8 colour-coded mask, each label its palette colour.

    The inverse of :func:`snap_to_palette` for a clean map: saved as PNG it reads back as the same labels.
    """
    return _PALETTE_RGB.astype(np.uint8)[labels]


def label_names(labels: np.ndarray) -> tuple[str, ...]:
    """Palette names of the labels present in ``labels``, in palette order."""
    return tuple(PALETTE_NAMES[index] for index in np.unique(labels))


def pair_segments(content_labels: np.ndarray, style_labels: np.ndarray,
                  content: MaskDiagnostics | None = None,
                  style: MaskDiagnostics | None = None) -> PairDiagnostics:
    """Pair the segments of two label maps by label; see :class:`PairDiagnostics`."""
    content_set, style_set = set(label_names(content_labels)), set(label_names(style_labels))
    return PairDiagnostics(content=content, style=style,
                           matched=_in_palette_order(content_set & style_set),
                           content_only=_in_palette_order(content_set - style_set),
                           style_only=_in_palette_order(style_set - content_set))


def _in_palette_order(names: set[str]) -> tuple[str, ...]:
    return tuple(name for name in PALETTE_NAMES if name in names)


def one_hot(labels: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(H, W, len(names)) float32 indicator maps of the named labels."""
    indices = np.array([PALETTE_NAMES.index(name) for name in names], dtype=labels.dtype)
    return (labels[..., None] == indices[None, None, :]).astype(np.float32)
