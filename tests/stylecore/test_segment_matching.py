"""Automatic segment matching on synthetic scenes with known regions, and how transfer uses it."""

import numpy as np
import pytest

from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.masks import PALETTE
from stylecore.segment_matching import guided_filter, match_segments
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


def test_guided_filter_keeps_a_constant_and_follows_the_guide_edge():
    guide = np.zeros((20, 20, 3), np.float32)
    guide[:, 10:] = 1.0
    np.testing.assert_allclose(guided_filter(guide, np.full((20, 20, 1), 0.3, np.float32), radius=3,
                                             epsilon=1e-3), 0.3, atol=1e-5)
    blurred_step = np.clip((np.arange(20) - 6) / 8, 0, 1)[None, :, None].repeat(20, axis=0).astype(np.float32)
    filtered = guided_filter(guide, blurred_step, radius=3, epsilon=1e-4)[..., 0]
    assert filtered[:, 8].max() < 0.2 and filtered[:, 11].min() > 0.6
