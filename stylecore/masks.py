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

That is the ``palette`` mask format. A dataset's label maps (``ids``: class-id images; ``colours``:
every exact colour a label) are read by :mod:`stylecore.label_maps` into integer keys and cleaned
by :func:`clean_label_keys` (no snapping: resized, ignored pixels filled, specks merged); their
label values then index the pair's own names (``PreparedPair.label_names``), which
:class:`SegmentLabel` carries to the loss. :func:`load_mask` reads a mask in whichever format.
A grey palette mask that is mostly neither black, grey nor white is refused as a class-id map
(:func:`_refuse_class_ids`).
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
from stylecore.label_maps import (IGNORED, MAX_LABELS, LabelGroups, colour_keys, id_keys, ids_from_array, key_name,
                                  read_class_ids, read_colours, read_label_groups)

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
    """Distinct colours in the file (9 or fewer for a clean palette mask), or distinct class ids."""
    snapped_fraction: float
    """Fraction of the file's pixels whose colour was not exactly a palette colour."""
    dropped_specks: int
    """Connected components merged into their neighbours for being smaller than the minimum."""
    dropped_fraction: float
    """Fraction of the working-size pixels relabelled by speck merging."""
    labels: tuple[str, ...]
    """Label names present after cleaning: palette names, or as :func:`stylecore.label_maps.key_name` calls them."""
    dropped_labels: tuple[str, ...] = ()
    """Label names the mask had at working size that speck merging removed: segments every piece of
    which was under ``min_segment_fraction`` of the image (a fallback, :mod:`stylecore.fallbacks`)."""
    mask_format: str = "palette"
    """How the file was read (``TransferConfig.mask_format``)."""
    ignored_fraction: float = 0.0
    """Fraction of the working-size pixels that held the ignore id and took their nearest labelled neighbour's label."""

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
    masks_found: str = ""
    """Which label maps automatic segment matching (:mod:`stylecore.segment_matching`) found rather than
    mask files gave: "" (none), "content", "style" or "both"."""

    @property
    def automatic(self) -> bool:
        """At least one label map was found automatically (and is worth writing out for a user to fix)."""
        return self.masks_found != ""

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
        f"colour the segments with {', '.join(f'{name} {PALETTE[name]}' for name in PALETTE_NAMES)}, or give "
        "--mask-format colours for a dataset's label map")


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
    """A palette mask file as (H, W, 3) uint8 RGB, upright (see the module docstring for the conversions);
    ``what`` names the file in messages ("content mask"). A class-id map is refused
    (:func:`_refuse_class_ids`)."""
    with open_checked(path, what=what, max_pixels=max_pixels) as opened:
        image = decoded(opened, what=what, path=path)
        lossy = opened.format in LOSSY_FORMATS
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            values = np.asarray(image)
            if not lossy:
                _refuse_class_ids(values, 257, what)
            grey = np.clip(np.round(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        image = without_alpha(image)
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if not lossy and (rgb == rgb[..., :1]).all():
        _refuse_class_ids(rgb[..., 0], 1, what)
    return rgb


LOSSY_FORMATS = frozenset({"JPEG", "MPO", "WEBP"})
"""File formats whose noise moves greys off black and white: a file in them is never a class-id map."""


def _refuse_class_ids(grey: np.ndarray, scale: int, what: str) -> None:
    """Refuse a grey palette mask (H, W) whose pixels are mostly neither black, the palette's grey nor
    white, in units where white is 255 * ``scale``: it is a class-id map, whose ids (2 to 27, say)
    would all snap to black and merge every segment into one."""
    greys = np.array([0, 128, 255]) * scale
    off = float(np.mean(~np.isin(grey, greys)))
    if off > MAX_OFF_PALETTE_SHARE:
        values = np.unique(grey)
        raise InputImageError(
            f"{what} is a grey image whose pixels are {off:.0%} neither black, grey nor white ({values.size} distinct "
            f"values from {values[0]} to {values[-1]}): a class-id map, not a palette mask; give --mask-format ids")


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


def clean_label_keys(keys: np.ndarray, *, photo_shape: tuple[int, int], working_shape: tuple[int, int],
                     min_segment_fraction: float, reading: MaskReading,
                     what: str = "mask") -> tuple[np.ndarray, np.ndarray, MaskDiagnostics]:
    """Clean an (H, W) map of label keys (:mod:`stylecore.label_maps`) into a label map of ``working_shape``.

    As :func:`clean_label_map`, without snapping: resized with nearest-neighbour, ignored pixels
    given their nearest labelled pixel's label, specks merged. Returns (labels (h, w) uint8,
    keys (K,) int64: the key of each label value, diagnostics).
    """
    check_mask_shape(keys.shape, photo_shape, what=what)
    present, inverse = np.unique(keys, return_inverse=True)
    labelled = present[present != IGNORED]
    if labelled.size == 0:
        raise InputImageError(f"every pixel of {what} holds the ignore id {reading.ignore_label}, so it labels nothing")
    if labelled.size > MAX_LABELS:
        raise InputImageError(f"{what} has {labelled.size} distinct labels, more than the {MAX_LABELS} a label map "
                              "can carry; fold them into groups with --label-groups")
    resized = resize_labels(inverse.reshape(keys.shape), working_shape)
    filled, ignored = _fill_ignored(resized, 0 if present[0] == IGNORED else None, what)
    min_pixels = max(1, int(round(min_segment_fraction * filled.size)))
    cleaned, specks, relabelled = merge_specks(filled, min_pixels)
    def names_of(values: np.ndarray) -> tuple[str, ...]:
        return tuple(key_name(int(key), reading.groups, reading.mask_format) for key in present[np.unique(values)])

    names = names_of(cleaned)
    diagnostics = MaskDiagnostics(
        source_shape=tuple(keys.shape), photo_shape=tuple(photo_shape), distinct_colours=int(labelled.size),
        snapped_fraction=0.0, dropped_specks=specks, dropped_fraction=relabelled / cleaned.size, labels=names,
        dropped_labels=tuple(name for name in names_of(filled) if name not in names),
        mask_format=reading.mask_format, ignored_fraction=ignored / cleaned.size)
    return cleaned, present, diagnostics


def _fill_ignored(labels: np.ndarray, ignored: int | None, what: str) -> tuple[np.ndarray, int]:
    """``labels`` with each pixel of value ``ignored`` given its nearest other pixel's label, and how many
    there were."""
    from scipy import ndimage  # imported here for the reason merge_specks gives

    if ignored is None or not (labels == ignored).any():
        return labels, 0
    mask = labels == ignored
    if mask.all():
        raise InputImageError(f"at the working size every pixel of {what} is ignored, so it labels nothing")
    _, (rows, cols) = ndimage.distance_transform_edt(mask, return_indices=True)
    return labels[rows, cols], int(mask.sum())


@dataclasses.dataclass(frozen=True)
class MaskReading:
    """How a pair's mask files are read: :class:`~stylecore.config.TransferConfig`'s ``mask_format``,
    ``ignore_label`` and its ``label_groups`` table, read once."""

    mask_format: str = "palette"
    ignore_label: int | None = None
    groups: LabelGroups = LabelGroups()

    @classmethod
    def from_config(cls, config: TransferConfig) -> MaskReading:
        """The reading ``config`` asks for; raises :class:`InputImageError` for an unusable group table."""
        groups = read_label_groups(config.label_groups) if config.label_groups else LabelGroups()
        listed = groups.ids if config.mask_format == "ids" else groups.colours
        if config.label_groups and not listed:
            kind = "class ids" if config.mask_format == "ids" else '"#rrggbb" colours'
            raise InputImageError(f"the label groups file {config.label_groups} lists no {kind}, so it groups "
                                  f"nothing in {config.mask_format} masks")
        return cls(mask_format=config.mask_format, ignore_label=config.ignore_label, groups=groups)


def load_mask(source: str | os.PathLike[str] | np.ndarray, *, reading: MaskReading, photo_shape: tuple[int, int],
              working_shape: tuple[int, int], min_segment_fraction: float, what: str,
              max_pixels: int = TransferConfig.max_image_pixels) -> tuple[np.ndarray, np.ndarray, MaskDiagnostics]:
    """A mask file (or array) read as ``reading`` says and cleaned at ``working_shape``.

    Returns (labels (h, w) uint8, keys (K,) int64: the key of each label value, diagnostics); a
    palette mask's keys are the palette indices. Arrays: (H, W, 3) uint8 RGB for palette and
    colours, (H, W) integers for ids.
    """
    array = source if isinstance(source, np.ndarray) else None
    if reading.mask_format == "palette":
        rgb = array if array is not None else read_mask(source, what=what, max_pixels=max_pixels)
        labels, diagnostics = clean_label_map(rgb, photo_shape=photo_shape, working_shape=working_shape,
                                              min_segment_fraction=min_segment_fraction, what=what)
        return labels, np.arange(len(PALETTE)), diagnostics
    if reading.mask_format == "ids":
        ids = ids_from_array(array, what=what) if array is not None else read_class_ids(
            source, what=what, max_pixels=max_pixels)
        keys = id_keys(ids, reading.groups, reading.ignore_label, what=what)
    else:
        rgb = array if array is not None else read_colours(source, what=what, max_pixels=max_pixels)
        keys = colour_keys(rgb, reading.groups, what=what)
    return clean_label_keys(keys, photo_shape=photo_shape, working_shape=working_shape,
                            min_segment_fraction=min_segment_fraction, reading=reading, what=what)


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

    The inverse of :func:`snap_to_palette` for a clean palette map: saved as PNG it reads back as the
    same labels. Labels past the palette's nine (a dataset's label map) get colours of their own
    (:func:`_display_colours`), for a person to look at.
    """
    return _display_colours(int(labels.max()) + 1)[labels]


def _display_colours(count: int) -> np.ndarray:
    """(max(count, 9), 3) uint8: the palette, then distinct colours spread by the golden ratio of hues."""
    extra = max(0, count - len(PALETTE))
    hues = (np.arange(extra) * 0.618034) % 1.0
    rgb = np.stack([np.clip(np.abs((hues * 6 + shift) % 6 - 3) - 1, 0, 1) for shift in (0, 4, 2)], axis=1)
    shade = np.where(np.arange(extra) % 2 == 0, 200, 120)[:, None]
    return np.concatenate([_PALETTE_RGB, (rgb * shade + 20).astype(np.int32)]).astype(np.uint8)


class SegmentLabel(str):
    """A segment's name that also knows its value in the pair's label maps, so that :func:`one_hot`
    finds it whatever the mask format; it compares, hashes and serialises as the name."""

    value: int

    def __new__(cls, name: str, value: int) -> SegmentLabel:
        label = super().__new__(cls, name)
        label.value = value
        return label

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return SegmentLabel, (str(self), self.value)


def label_names(labels: np.ndarray, names: tuple[str, ...] = PALETTE_NAMES) -> tuple[SegmentLabel, ...]:
    """Names of the labels present in ``labels``, in the order of ``names`` (the name of each label value)."""
    return tuple(SegmentLabel(names[index], int(index)) for index in np.unique(labels))


def pair_segments(content_labels: np.ndarray, style_labels: np.ndarray,
                  content: MaskDiagnostics | None = None, style: MaskDiagnostics | None = None, *,
                  names: tuple[str, ...] = PALETTE_NAMES) -> PairDiagnostics:
    """Pair the segments of two label maps by label; see :class:`PairDiagnostics`. ``names``: of each label value."""
    content_set, style_set = set(label_names(content_labels, names)), set(label_names(style_labels, names))
    return PairDiagnostics(content=content, style=style, matched=_in_value_order(content_set & style_set),
                           content_only=_in_value_order(content_set - style_set),
                           style_only=_in_value_order(style_set - content_set))


def _in_value_order(labels: set[SegmentLabel]) -> tuple[SegmentLabel, ...]:
    return tuple(sorted(labels, key=lambda label: label.value))


def one_hot(labels: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(H, W, len(names)) float32 indicator maps of the named labels: :class:`SegmentLabel` s, or palette names."""
    indices = np.array([name.value if isinstance(name, SegmentLabel) else PALETTE_NAMES.index(name) for name in names],
                       dtype=labels.dtype)
    return (labels[..., None] == indices[None, None, :]).astype(np.float32)
