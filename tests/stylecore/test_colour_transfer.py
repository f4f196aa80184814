"""Per-segment colour-statistics transfer: each output segment gets its style segment's Lab mean and std."""

import numpy as np
import pytest

from stylecore.colour import lab_to_srgb, srgb_to_lab
from stylecore.colour_transfer import colour_statistics_transfer
from stylecore.masks import PALETTE_NAMES


def lab_statistics(image, labels, label):
    """Lab (mean, population std) of ``image`` inside ``labels == label``, each of shape (3,)."""
    pixels = srgb_to_lab(image)[labels == label]
    return pixels.mean(axis=0), pixels.std(axis=0)


def mid_range_image(rng, shape, *, lightness, spread):
    """Random Lab colours around (lightness, 0, 0), well inside the sRGB gamut, as sRGB."""
    lab = np.stack([rng.normal(lightness, spread, shape), rng.normal(0.0, spread, shape),
                    rng.normal(0.0, spread, shape)], axis=-1)
    rgb = lab_to_srgb(lab)
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    return rgb


@pytest.fixture
def synthetic_pair():
    """Content 40x60 with labels 0 (left) and 1 (right); style 30x50 with labels 0 (top) and 2."""
    rng = np.random.default_rng(1)
    content = mid_range_image(rng, (40, 60), lightness=45.0, spread=4.0)
    style = mid_range_image(rng, (30, 50), lightness=60.0, spread=6.0)
    style[:12] = mid_range_image(rng, (12, 50), lightness=55.0, spread=3.0)
    content_labels = np.zeros((40, 60), np.uint8)
    content_labels[:, 25:] = 1
    style_labels = np.full((30, 50), 2, np.uint8)
    style_labels[:12] = 0
    return content, style, content_labels, style_labels


def test_matched_segment_takes_style_segment_mean_and_std(synthetic_pair):
    content, style, content_labels, style_labels = synthetic_pair
    result = colour_statistics_transfer(content, style, content_labels, style_labels)
    result_mean, result_std = lab_statistics(result, content_labels, 0)
    style_mean, style_std = lab_statistics(style, style_labels, 0)
    np.testing.assert_allclose(result_mean, style_mean, atol=2e-3)
    np.testing.assert_allclose(result_std, style_std, rtol=1e-3)


def test_content_only_segment_takes_whole_style_under_global_style(synthetic_pair):
    content, style, content_labels, style_labels = synthetic_pair
    result = colour_statistics_transfer(content, style, content_labels, style_labels,
                                        content_only_policy="global_style")
    result_mean, result_std = lab_statistics(result, content_labels, 1)
    whole_style = srgb_to_lab(style).reshape(-1, 3)
    np.testing.assert_allclose(result_mean, whole_style.mean(axis=0), atol=2e-3)
    np.testing.assert_allclose(result_std, whole_style.std(axis=0), rtol=1e-3)


def test_content_only_segment_is_unchanged_under_content_only(synthetic_pair):
    content, style, content_labels, style_labels = synthetic_pair
    result = colour_statistics_transfer(content, style, content_labels, style_labels,
                                        content_only_policy="content_only")
    right = content_labels == 1
    np.testing.assert_array_equal(result[right], content[right].astype(np.float32))
    assert np.abs(result[~right] - content[~right]).mean() > 0.05


def test_constant_segment_takes_style_segment_mean(synthetic_pair):
    _, style, content_labels, style_labels = synthetic_pair
    flat_content = np.full(content_labels.shape + (3,), 0.4)
    result = colour_statistics_transfer(flat_content, style, content_labels, style_labels)
    result_mean, result_std = lab_statistics(result, content_labels, 0)
    np.testing.assert_allclose(result_mean, lab_statistics(style, style_labels, 0)[0], atol=2e-3)
    np.testing.assert_allclose(result_std, 0.0, atol=1e-4)


def test_real_pair_segments_match_their_style_segments(example_pair):
    # Pair 55 (sky and ground) stays inside the sRGB gamut, so clipping changes nothing here.
    pair = example_pair(55, 64)
    result = colour_statistics_transfer(pair.content, pair.style, pair.content_labels, pair.style_labels)
    assert result.shape == pair.content.shape and result.dtype == np.float32
    for name in pair.diagnostics.matched:
        label = PALETTE_NAMES.index(name)
        style_mean, style_std = lab_statistics(pair.style, pair.style_labels, label)
        content_mean, _ = lab_statistics(pair.content, pair.content_labels, label)
        result_mean, result_std = lab_statistics(result, pair.content_labels, label)
        assert np.abs(content_mean - style_mean).max() > 5.0
        np.testing.assert_allclose(result_mean, style_mean, atol=0.05)
        np.testing.assert_allclose(result_std, style_std, rtol=0.01)


def test_real_pair_content_only_segment_follows_the_policy(example_pair):
    # Pair 55 with the left third of its content relabelled purple, a label its style lacks.
    pair = example_pair(55, 64)
    content_labels = pair.content_labels.copy()
    content_labels[:, : content_labels.shape[1] // 3] = PALETTE_NAMES.index("purple")
    purple = content_labels == PALETTE_NAMES.index("purple")
    arguments = (pair.content, pair.style, content_labels, pair.style_labels)
    kept = colour_statistics_transfer(*arguments, content_only_policy="content_only")
    np.testing.assert_array_equal(kept[purple], pair.content[purple])
    styled = colour_statistics_transfer(*arguments, content_only_policy="global_style")
    whole_style = srgb_to_lab(pair.style).reshape(-1, 3)
    styled_lab = srgb_to_lab(styled)[purple]
    assert np.abs(srgb_to_lab(pair.content)[purple].mean(axis=0) - whole_style.mean(axis=0)).max() > 5.0
    np.testing.assert_allclose(styled_lab.mean(axis=0), whole_style.mean(axis=0), atol=0.5)
    np.testing.assert_allclose(styled_lab.std(axis=0), whole_style.std(axis=0), rtol=0.05)


def test_rejects_unknown_policy_and_mismatched_labels(synthetic_pair):
    content, style, content_labels, style_labels = synthetic_pair
    with pytest.raises(ValueError, match="content_only_policy"):
        colour_statistics_transfer(content, style, content_labels, style_labels, content_only_policy="skip")
    with pytest.raises(ValueError, match="content labels"):
        colour_statistics_transfer(content, style, content_labels[1:], style_labels)
