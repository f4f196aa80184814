"""Where a pair goes in: content and style photos with their masks, checked, loaded and cleaned at working size.

:func:`probe_pair` judges a pair from the files' headers alone, in milliseconds and without
TensorFlow: every file opens as an image within the pixel limit, each photo is large enough
(:data:`~stylecore.images.MIN_PHOTO_LONG_SIDE`) and not so elongated that its short side vanishes
in the network at the coarsest stage, and each mask has its photo's shape. :func:`prepare_pair`
then decodes and cleans; what only decoding can find (a truncated file) is refused there.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from stylecore.architectures import layer_choice, minimum_input_side
from stylecore.config import TransferConfig
from stylecore.errors import InputImageError
from stylecore.images import check_photo_size, probe_image, read_photo, resize_image, working_shape
from stylecore.label_maps import IGNORED, MAX_LABELS, key_name
from stylecore.masks import (PALETTE_NAMES, MaskReading, PairDiagnostics, check_mask_shape, load_mask, pair_segments,
                             resize_labels)

ImageSource = str | os.PathLike[str] | np.ndarray
"""A file path, or an array: RGB for photos (uint8, or float in [0, 1]); for masks uint8 RGB (palette and
colours formats) or (H, W) integer class ids (ids format)."""


@dataclasses.dataclass(frozen=True)
class PreparedPair:
    """Both photos at working size, float32 RGB in [0, 1], with label maps of the same sizes."""

    content: np.ndarray
    style: np.ndarray
    content_labels: np.ndarray
    style_labels: np.ndarray
    diagnostics: PairDiagnostics
    label_names: tuple[str, ...] = PALETTE_NAMES
    """The name of each label value of both maps: the palette's, or a dataset's (:mod:`stylecore.label_maps`)."""

    def resized(self, long_side: int) -> PreparedPair:
        """The same pair with both photos (and their labels) rescaled to ``long_side``."""
        content_shape = working_shape(*self.content.shape[:2], long_side)
        style_shape = working_shape(*self.style.shape[:2], long_side)
        return dataclasses.replace(
            self, content=resize_image(self.content, content_shape), style=resize_image(self.style, style_shape),
            content_labels=resize_labels(self.content_labels, content_shape),
            style_labels=resize_labels(self.style_labels, style_shape))


def _name(role: str, source: ImageSource) -> str:
    """How messages call a photo or mask: its role, and its path when it is a file."""
    return role if isinstance(source, np.ndarray) else f"{role} {source}"


def _photo(source: ImageSource, role: str, max_pixels: int) -> np.ndarray:
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.size == 0:
            raise InputImageError(f"a photo array must be (H, W, 3), got shape {source.shape}")
        photo = source if source.dtype == np.uint8 else np.clip(source.astype(np.float32), 0.0, 1.0)
    else:
        photo = read_photo(source, what=role, max_pixels=max_pixels)
    check_photo_size(photo.shape[:2], what=_name(role, source))
    return photo


def masks_to_find(content_mask: ImageSource | None, style_mask: ImageSource | None, auto_masks: str) -> str:
    """Which label maps automatic segment matching must find: "", "content", "style" or "both".

    A missing side is found from the labelled one (:func:`stylecore.segment_matching.one_side_pair`)
    unless ``auto_masks`` is "off", which refuses one mask without the other: with no automatic
    matching there is nothing to pair the labelled photo's segments with.
    """
    missing = [role for role, mask in (("content", content_mask), ("style", style_mask)) if mask is None]
    if auto_masks == "off" and len(missing) == 1:
        raise InputImageError(f"the pair has a {'style' if missing == ['content'] else 'content'} mask but no "
                              f"{missing[0]} mask, which auto_masks off cannot find; give both masks or set "
                              "auto_masks to when_missing")
    if auto_masks == "off" or not missing:
        return ""
    return "both" if len(missing) == 2 else missing[0]


def _shape(source: ImageSource, role: str, max_pixels: int) -> tuple[int, int]:
    if isinstance(source, np.ndarray):
        return source.shape[:2]
    return probe_image(source, what=role, max_pixels=max_pixels)


def probe_pair(content: ImageSource, style: ImageSource, content_mask: ImageSource | None = None,
               style_mask: ImageSource | None = None, *, config: TransferConfig) -> None:
    """Refuse a pair that cannot be styled, from headers (or array shapes) alone; see the module docstring.

    Raises :class:`InputImageError` with one sentence; decodes nothing and needs no network.
    """
    masks_to_find(content_mask, style_mask, config.auto_masks)
    for role, photo, mask in (("content", content, content_mask), ("style", style, style_mask)):
        photo_name = _name(f"{role} photo", photo)
        photo_shape = _shape(photo, f"{role} photo", config.max_image_pixels)
        check_photo_size(photo_shape, what=photo_name)
        check_stage_shape(photo_shape, config, what=photo_name)
        if mask is not None:
            check_mask_shape(_shape(mask, f"{role} mask", config.max_image_pixels), photo_shape,
                             what=_name(f"{role} mask", mask))


def check_stage_shape(shape: tuple[int, int], config: TransferConfig, *, what: str = "photo") -> None:
    """Refuse a photo of (height, width) ``shape`` whose short side, at the coarsest stage of ``config``
    (its working size times ``coarse_scale``, as :func:`stylecore.transfer.transfer` runs stage 1), is
    under what the extractor needs for the configured layers (:func:`~stylecore.architectures.minimum_input_side`).
    """
    layers = layer_choice(config.extractor, config.content_layers, config.style_layers, config.style_layer_weights)
    needed = minimum_input_side(config.extractor, [*layers.content_layers, *layers.style_layers])
    coarse_side = round(config.size * config.coarse_scale)
    coarse = working_shape(*working_shape(*shape, config.size), coarse_side)
    if min(coarse) >= needed:
        return
    least_size = int(np.ceil(needed * max(shape) / min(shape) / config.coarse_scale))
    raise InputImageError(
        f"{what} is {shape[1]}x{shape[0]} px, too narrow: at the coarsest stage ({coarse[1]}x{coarse[0]} px) its "
        f"short side is under the {needed} px that {config.extractor}'s layers need; crop it to at most "
        f"{coarse_side / needed:.1f}:1 or raise --size to at least {least_size}")


def prepare_pair(content: ImageSource, style: ImageSource, content_mask: ImageSource | None = None,
                 style_mask: ImageSource | None = None, *, long_side: int, min_segment_fraction: float,
                 max_pixels: int = TransferConfig.max_image_pixels,
                 reading: MaskReading = MaskReading()) -> PreparedPair:
    """Load, resize and clean a pair. A side without a mask is one segment, label 0, until automatic
    segment matching (:mod:`stylecore.segment_matching`) finds its labels.

    Photos and masks are read with ``max_pixels`` as their limit (see :mod:`stylecore.images`), masks
    as ``reading`` says (:class:`~stylecore.masks.MaskReading`, default: palette masks).
    """
    photos, labels, keys, diagnostics = {}, {}, {}, {}
    for role, photo, mask in (("content", content, content_mask), ("style", style, style_mask)):
        photo = _photo(photo, f"{role} photo", max_pixels)
        shape = working_shape(*photo.shape[:2], long_side)
        photos[role] = resize_image(photo, shape)
        labels[role], diagnostics[role] = np.zeros(shape, np.uint8), None
        if mask is not None:
            labels[role], keys[role], diagnostics[role] = load_mask(
                mask, reading=reading, photo_shape=photo.shape[:2], working_shape=shape,
                min_segment_fraction=min_segment_fraction, what=_name(f"{role} mask", mask), max_pixels=max_pixels)
    names = _shared_labels(labels, keys, reading)
    return PreparedPair(
        content=photos["content"], style=photos["style"], content_labels=labels["content"],
        style_labels=labels["style"], label_names=names,
        diagnostics=pair_segments(labels["content"], labels["style"], diagnostics["content"], diagnostics["style"],
                                  names=names))


def _shared_labels(labels: dict[str, np.ndarray], keys: dict[str, np.ndarray], reading: MaskReading) -> tuple[str, ...]:
    """Relabel each side's ``labels`` (indices into its ``keys``) in place to indices into the keys of both
    sides together, so that one value means one label in both photos; the name of each value.

    Palette masks need nothing: their values are palette indices on both sides already.
    """
    if reading.mask_format == "palette" or not keys:
        return PALETTE_NAMES
    shared = np.unique(np.concatenate([side_keys[side_keys != IGNORED] for side_keys in keys.values()]))
    if shared.size > MAX_LABELS:
        raise InputImageError(f"the pair's two masks have {shared.size} distinct labels together, more than the "
                              f"{MAX_LABELS} a label map can carry; fold them into groups with --label-groups")
    for role, side_keys in keys.items():
        labels[role] = np.searchsorted(shared, side_keys).astype(np.uint8)[labels[role]]
    return tuple(key_name(int(key), reading.groups, reading.mask_format) for key in shared)
