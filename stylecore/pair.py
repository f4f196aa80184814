"""Where a pair goes in: content and style photos with their masks, loaded and cleaned at working size."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from stylecore.errors import InputImageError
from stylecore.images import read_image, resize_image, working_shape
from stylecore.masks import PairDiagnostics, clean_label_map, pair_segments, read_mask, resize_labels

ImageSource = str | os.PathLike[str] | np.ndarray
"""A file path, or an array: float RGB in [0, 1] for photos, uint8 colour-coded RGB for masks."""


@dataclasses.dataclass(frozen=True)
class PreparedPair:
    """Both photos at working size, float32 RGB in [0, 1], with label maps of the same sizes."""

    content: np.ndarray
    style: np.ndarray
    content_labels: np.ndarray
    style_labels: np.ndarray
    diagnostics: PairDiagnostics

    def resized(self, long_side: int) -> PreparedPair:
        """The same pair with both photos (and their labels) rescaled to ``long_side``."""
        content_shape = working_shape(*self.content.shape[:2], long_side)
        style_shape = working_shape(*self.style.shape[:2], long_side)
        return dataclasses.replace(
            self, content=resize_image(self.content, content_shape), style=resize_image(self.style, style_shape),
            content_labels=resize_labels(self.content_labels, content_shape),
            style_labels=resize_labels(self.style_labels, style_shape))


def _photo(source: ImageSource) -> np.ndarray:
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.size == 0:
            raise InputImageError(f"a photo array must be (H, W, 3), got shape {source.shape}")
        return np.clip(source.astype(np.float32), 0.0, 1.0)
    return read_image(source)


def _mask(source: ImageSource) -> np.ndarray:
    return source if isinstance(source, np.ndarray) else read_mask(source)


def prepare_pair(content: ImageSource, style: ImageSource, content_mask: ImageSource | None = None,
                 style_mask: ImageSource | None = None, *, long_side: int,
                 min_segment_fraction: float) -> PreparedPair:
    """Load, resize and clean a pair. Both masks or neither: no masks means one segment each side."""
    if (content_mask is None) != (style_mask is None):
        raise InputImageError("give both a content mask and a style mask, or neither")
    content_photo, style_photo = _photo(content), _photo(style)
    content_shape = working_shape(*content_photo.shape[:2], long_side)
    style_shape = working_shape(*style_photo.shape[:2], long_side)
    if content_mask is None:
        content_labels = np.zeros(content_shape, np.uint8)
        style_labels = np.zeros(style_shape, np.uint8)
        content_diagnostics = style_diagnostics = None
    else:
        content_labels, content_diagnostics = clean_label_map(
            _mask(content_mask), photo_shape=content_photo.shape[:2], working_shape=content_shape,
            min_segment_fraction=min_segment_fraction)
        style_labels, style_diagnostics = clean_label_map(
            _mask(style_mask), photo_shape=style_photo.shape[:2], working_shape=style_shape,
            min_segment_fraction=min_segment_fraction)
    return PreparedPair(
        content=resize_image(content_photo, content_shape), style=resize_image(style_photo, style_shape),
        content_labels=content_labels, style_labels=style_labels,
        diagnostics=pair_segments(content_labels, style_labels, content_diagnostics, style_diagnostics))
