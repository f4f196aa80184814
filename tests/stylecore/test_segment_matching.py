"""Automatic segment matching on synthetic scenes with known regions, and how transfer uses it."""

import numpy as np
import pytest
import tensorflow as tf

from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.images import working_shape
from stylecore.masks import PALETTE, PALETTE_NAMES
from stylecore.segment_matching import (FEATURE_LONG_SIDE, assign_cells, cell_features,
                                        match_segments, refine_labels)
from stylecore.transfer import transfer

HEIGHT, WIDTH = 64, 96
TINY = TransferConfig(size=WIDTH, coarse_scale=1.0, stage1_iterations=1, stage2_iterations=1, init="content")


def scene(top: tuple[float, float, float], bottom: tuple[float, float, float], seed: int) -> np.ndarray:
    """A (64, 96, 3) photo: a smooth sky-like top half over a striped, noisy ground-like bottom half."""
    rng = np.random.default_rng(seed)
    half = HEIGHT // 2
    image = np.empty((HEIGHT, WIDTH, 3), np.float32)
    image[:half] = np.asarray(top) * (0.85 + 0.15 * np.linspace(0, 1, half)[:, None, None])
    stripes = (np.indices((half, WIDTH)).sum(axis=0) % 4 < 2)[..., None]
    image[half:] = np.asarray(bottom) * np.where(stripes, 1.0, 0.55) + rng.normal(0, 0.04, (half, WIDTH, 3))
    return np.clip(image, 0, 1).astype(np.float32)


CONTENT = scene((0.2, 0.35, 0.9), (0.15, 0.6, 0.2), seed=0)
"""Blue top over green bottom."""
STYLE = scene((0.95, 0.55, 0.2), (0.45, 0.3, 0.15), seed=1)
"""The same layout in other colours: an orange top over a brown bottom."""


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def halves(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return labels[:HEIGHT // 2], labels[HEIGHT // 2:]


def test_two_segments_recover_the_two_regions_with_one_label_each_shared_by_both_photos(squeezenet):
    content_labels, style_labels = match_segments(CONTENT, STYLE, squeezenet, segments=2,
                                                  min_segment_fraction=0.001, seed=0)
    assert content_labels.shape == (HEIGHT, WIDTH) and style_labels.shape == (HEIGHT, WIDTH)
    for labels in (content_labels, style_labels):
        top, bottom = halves(labels)
        assert np.mean(top == top[0, WIDTH // 2]) > 0.95 and np.mean(bottom == bottom[-1, WIDTH // 2]) > 0.95
    assert halves(content_labels)[0][0, 0] == halves(style_labels)[0][0, 0]
    assert content_labels[0, 0] != content_labels[-1, 0]


def test_more_segments_than_regions_still_correspond_across_the_photos(squeezenet):
    """Five clusters over-segment two regions, but each label sits at the same place in both photos."""
    content_labels, style_labels = match_segments(CONTENT, STYLE, squeezenet, segments=5,
                                                  min_segment_fraction=0.001, seed=0)
    assert set(np.unique(content_labels)) == set(np.unique(style_labels))
    assert set(np.unique(content_labels)) <= set(range(len(PALETTE)))
    assert np.mean(content_labels == style_labels) > 0.9  # the scenes share their layout


def test_one_segment_asked_gives_one_segment(squeezenet):
    content_labels, style_labels = match_segments(CONTENT, STYLE, squeezenet, segments=1,
                                                  min_segment_fraction=0.001, seed=0)
    assert not content_labels.any() and not style_labels.any()


def test_transfer_moves_each_region_towards_its_counterpart(squeezenet):
    config = TINY.replace(init="colour_transfer", stage1_iterations=20, stage2_iterations=5)
    result = transfer(CONTENT, STYLE, config=config, extractor=squeezenet)
    assert result.diagnostics.automatic and len(result.diagnostics.matched) >= 2
    for output_half, content_half, style_half, other_style_half in zip(
            halves(result.image), halves(CONTENT), halves(STYLE), halves(STYLE)[::-1]):
        output_mean, target, other = (half.reshape(-1, 3).mean(axis=0)
                                      for half in (output_half, style_half, other_style_half))
        before = np.linalg.norm(content_half.reshape(-1, 3).mean(axis=0) - target)
        assert np.linalg.norm(output_mean - target) < 0.5 * before
        assert np.linalg.norm(output_mean - target) < np.linalg.norm(output_mean - other)


def hand_masks() -> tuple[np.ndarray, np.ndarray]:
    """Red left half and yellow right half: a segmentation unlike the scene's own regions."""
    mask = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    mask[:, :WIDTH // 2] = PALETTE["red"]
    mask[:, WIDTH // 2:] = PALETTE["yellow"]
    return mask, mask.copy()


def test_when_missing_with_masks_uses_the_hand_masks(squeezenet):
    result = transfer(CONTENT, STYLE, *hand_masks(), config=TINY, extractor=squeezenet)
    assert not result.diagnostics.automatic and result.diagnostics.matched == ("red", "yellow")


def test_on_ignores_given_masks(squeezenet):
    config = TINY.replace(auto_masks="on", auto_mask_segments=2)
    result = transfer(CONTENT, STYLE, *hand_masks(), config=config, extractor=squeezenet)
    assert result.diagnostics.automatic and result.diagnostics.matched == ("blue", "green")


def test_off_is_the_whole_image_transfer_bit_for_bit(squeezenet):
    """``off`` without masks is one segment; the same as one hand segment covering each photo."""
    config = TINY.replace(stage1_iterations=5, stage2_iterations=3, auto_masks="off")
    off = transfer(CONTENT, STYLE, config=config, extractor=squeezenet)
    whole = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    whole[:] = PALETTE["blue"]
    one_segment = transfer(CONTENT, STYLE, whole, whole, config=config, extractor=squeezenet)
    assert not off.diagnostics.automatic and off.diagnostics.matched == ("blue",)
    assert not off.content_labels.any() and not off.style_labels.any()
    np.testing.assert_array_equal(off.image, one_segment.image)


def test_refined_borders_move_to_the_full_resolution_edge_from_a_coarse_fit():
    """A 600 px photo (filter fitted at GUIDE_LONG_SIDE px) whose edge, at column 301, is not on the
    coarse grid: a grid border 20 px off lands on the edge at full resolution."""
    photo = np.full((400, 600, 3), 0.25, np.float32)
    photo[:, 301:] = (0.8, 0.7, 0.3)
    photo += np.random.default_rng(0).normal(0, 0.01, photo.shape).astype(np.float32)
    grid = np.zeros((32, 48), np.uint8)
    grid[:, 23:] = 1  # border at 23 / 48 of the width: column 287
    labels = refine_labels(grid, np.clip(photo, 0, 1), min_segment_fraction=0.001)
    assert labels.shape == (400, 600)
    assert not labels[:, :301].any() and labels[:, 301:].all()


def test_the_cells_do_not_depend_on_the_working_size_above_the_network_input_size(squeezenet):
    """At 672 px the network sees the photos at FEATURE_LONG_SIDE px: the same cells as for the
    photos given at that size (so the segments found at 350 px are those found at 700 px)."""
    large = [np.repeat(np.repeat(photo, 7, axis=0), 7, axis=1) for photo in (CONTENT, STYLE)]  # (448, 672)
    small = [tf.image.resize(photo[None], working_shape(448, 672, FEATURE_LONG_SIDE), method="area").numpy()[0]
             for photo in large]
    for from_large, from_small in zip(cell_features(*large, squeezenet), cell_features(*small, squeezenet),
                                      strict=True):
        assert from_large.shape == from_small.shape
        np.testing.assert_allclose(from_large, from_small, atol=1e-5)


def top_and_bottom_mask() -> np.ndarray:
    """The scene's own regions hand-labelled: grey top, purple bottom."""
    mask = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    mask[:HEIGHT // 2] = PALETTE["grey"]
    mask[HEIGHT // 2:] = PALETTE["purple"]
    return mask


@pytest.mark.parametrize("given", ["content", "style"])
def test_one_labelled_side_finds_the_other_sides_regions_with_its_labels(squeezenet, given):
    """The style's orange sky and brown ground take the content's grey and purple labels (or the reverse)."""
    masks = {"content_mask": None, "style_mask": None, f"{given}_mask": top_and_bottom_mask()}
    result = transfer(CONTENT, STYLE, **masks, config=TINY, extractor=squeezenet)
    found = "style" if given == "content" else "content"
    assert result.diagnostics.masks_found == found and result.diagnostics.automatic
    assert result.diagnostics.matched == ("grey", "purple")
    top, bottom = halves(getattr(result, f"{found}_labels"))
    assert np.mean(top == PALETTE_NAMES.index("grey")) > 0.9 and np.mean(bottom == PALETTE_NAMES.index("purple")) > 0.9
    assert getattr(result.diagnostics, given) is not None and getattr(result.diagnostics, found) is None


def test_assign_cells_steps_follow_the_other_photos_look():
    """Two groups whose means sit apart in the labelled photo; the other photo's cells are shifted as
    a whole (night against day): nearest mean alone puts every cell in one group, three k-means steps
    started from the means recover both."""
    rng = np.random.default_rng(0)
    known = np.concatenate([rng.normal(0, 0.1, (8, 8, 2)), rng.normal(2, 0.1, (8, 8, 2))])
    grid = np.repeat([[3], [5]], 8, axis=0).repeat(8, axis=1).astype(np.uint8)
    other = known + 1.2
    assert set(np.unique(assign_cells(grid, known, other, iterations=0))) == {5}
    np.testing.assert_array_equal(assign_cells(grid, known, other, iterations=3), grid)
