"""Metrics with known answers: style distance, SSIM, matting-Laplacian photorealism energy."""

import numpy as np
import pytest

from stylecore.colour import lab_to_srgb, srgb_to_lab
from stylecore.colour_transfer import colour_statistics_transfer
from stylecore.laplacian import matting_laplacian
from stylecore.masks import PALETTE_NAMES
from stylecore.metrics import (evaluate_output, gaussian_wasserstein, luma, photorealism_energy,
                               structural_similarity, style_distance)

RED, BLUE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
RED_BLUE_DELTA_E = float(np.linalg.norm(np.subtract((53.2408, 80.0925, 67.2032),
                                                    (32.2970, 79.1875, -107.8602))))
"""CIE76 difference of sRGB red and blue from published Lab values: 176.32."""
SKIMAGE_NOISY_RAMP_SSIM = 0.6753378047908642
"""scikit-image 0.26's SSIM of the noisy ramp in :func:`test_ssim_matches_scikit_image_on_a_noisy_gradient`."""
COLOUR_MIX = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])


def two_segment_image(left, right, shape=(20, 30), split=12):
    image = np.empty(shape + (3,))
    image[:, :split], image[:, split:] = left, right
    labels = np.zeros(shape, np.uint8)
    labels[:, split:] = 1
    return image, labels


def affine_recolouring(image):
    """0.7 * (3x3 mix of the channels) + 0.1: rows of the mix sum to 1, so values stay in [0.1, 0.8]."""
    return 0.7 * np.einsum("ij,hwj->hwi", COLOUR_MIX, image) + 0.1


# --- style distance ------------------------------------------------------------------------------

def test_identical_segments_have_zero_style_distance(example_pair):
    pair = example_pair(14, 80)
    # W2 is the square root of a difference of traces of about 1e3, so round-off leaves ~1e-6.
    assert style_distance(pair.style, pair.style, pair.style_labels, pair.style_labels) == pytest.approx(0.0, abs=1e-4)


def test_uniform_lightness_cast_scores_its_size_in_delta_e():
    rng = np.random.default_rng(0)
    style = rng.uniform(0.3, 0.7, (30, 40, 3))
    labels = (np.arange(40)[None, :] >= 15).repeat(30, axis=0).astype(np.uint8)
    cast = lab_to_srgb(srgb_to_lab(style) + [5.0, 0.0, 0.0])
    assert style_distance(cast, style, labels, labels) == pytest.approx(5.0, abs=1e-6)


def test_swapping_two_segment_colours_scores_their_colour_difference():
    style, labels = two_segment_image(RED, BLUE)
    swapped, _ = two_segment_image(BLUE, RED)
    assert style_distance(style, style, labels, labels) == pytest.approx(0.0, abs=1e-6)
    assert style_distance(swapped, style, labels, labels) == pytest.approx(RED_BLUE_DELTA_E, abs=0.01)


def test_swapping_segment_styles_raises_distance_on_a_real_pair(example_pair):
    pair = example_pair(55, 64)
    first, second = (PALETTE_NAMES.index(name) for name in pair.diagnostics.matched)  # sky and ground
    swapped_style_labels = pair.style_labels.copy()
    swapped_style_labels[pair.style_labels == first] = second
    swapped_style_labels[pair.style_labels == second] = first
    matched = colour_statistics_transfer(pair.content, pair.style, pair.content_labels, pair.style_labels)
    swapped = colour_statistics_transfer(pair.content, pair.style, pair.content_labels, swapped_style_labels)
    arguments = (pair.style, pair.content_labels, pair.style_labels)
    matched_distance, swapped_distance = style_distance(matched, *arguments), style_distance(swapped, *arguments)
    # Means and stds match exactly; what is left is the Lab covariance the transfer does not touch.
    assert matched_distance < 5.0
    assert swapped_distance > 5.0 * matched_distance
    assert style_distance(pair.content, *arguments) > 10.0


def test_content_only_segment_uses_whole_style_or_is_skipped():
    # Style: all label 0, red. Output: 12 of 30 columns red (label 0), the rest blue (label 1,
    # absent from the style), so only the blue part differs from its reference.
    style = np.broadcast_to(np.array(RED), (10, 10, 3))
    style_labels = np.zeros((10, 10), np.uint8)
    output, content_labels = two_segment_image(RED, BLUE)
    global_style = style_distance(output, style, content_labels, style_labels, content_only_policy="global_style")
    skipped = style_distance(output, style, content_labels, style_labels, content_only_policy="content_only")
    assert global_style == pytest.approx(RED_BLUE_DELTA_E * 18 / 30, abs=0.01)
    assert skipped == pytest.approx(0.0, abs=1e-6)


def test_gaussian_wasserstein_adds_the_covariance_term():
    rng = np.random.default_rng(0)
    reference = rng.normal(0.0, 1.0, (20000, 3))
    reference -= reference.mean(axis=0)
    # Same (zero) mean, S = 9 R: W2^2 = tr(9R + R - 2 (R^1/2 9R R^1/2)^1/2) = 4 tr(R).
    reference_trace = np.trace(np.cov(reference, rowvar=False, bias=True))
    assert gaussian_wasserstein(3.0 * reference, reference) == pytest.approx(2.0 * np.sqrt(reference_trace),
                                                                             rel=1e-9)
    assert gaussian_wasserstein(reference + [3.0, 4.0, 0.0], reference) == pytest.approx(5.0, rel=1e-9)


# --- SSIM ----------------------------------------------------------------------------------------

def test_identical_images_have_ssim_one(example_pair):
    content = example_pair(1, 80).content
    assert structural_similarity(content, content) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_flat_greys_is_the_luminance_term():
    # Flat images: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = 1e-4.
    dark, light = np.full((20, 20, 3), 0.5), np.full((20, 20, 3), 0.6)
    expected = (2 * 0.5 * 0.6 + 1e-4) / (0.5 ** 2 + 0.6 ** 2 + 1e-4)
    assert structural_similarity(dark, light) == pytest.approx(expected, rel=1e-12)


def test_ssim_matches_scikit_image_on_a_noisy_gradient():
    rng = np.random.default_rng(3)
    ramp = np.linspace(0.1, 0.9, 48)[None, :, None] * np.ones((32, 48, 3))
    noisy = np.clip(ramp + rng.normal(0.0, 0.05, ramp.shape), 0.0, 1.0)
    # skimage.metrics.structural_similarity(luma(noisy), luma(ramp), gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False, data_range=1.0), scikit-image 0.26.
    assert structural_similarity(noisy, ramp) == pytest.approx(SKIMAGE_NOISY_RAMP_SSIM, abs=1e-9)


def test_ssim_drops_for_a_different_structure(example_pair):
    content = example_pair(1, 80).content
    shuffled = np.random.default_rng(0).permutation(content.reshape(-1, 3)).reshape(content.shape)
    assert structural_similarity(shuffled, content) < 0.1
    assert structural_similarity(affine_recolouring(content), content) > 0.9


def test_luma_uses_rec601_weights():
    primaries = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    np.testing.assert_allclose(luma(primaries), [[0.299, 0.587, 0.114]], rtol=1e-12)


# --- photorealism energy ---------------------------------------------------------------------------

def quadratic_form_energy(output, content, *, epsilon=1e-7):
    """sum_c V_c^T L V_c / (H W), L built by pymatting: the definition, accurate where L's windows are
    well conditioned."""
    pixels = output.reshape(-1, 3).astype(np.float64)
    return float(np.sum(pixels * (matting_laplacian(content, epsilon=epsilon) @ pixels)) / len(pixels))


def test_content_and_its_affine_recolouring_have_near_zero_energy(example_pair):
    content = example_pair(9, 64).content
    noisy = np.clip(content + np.random.default_rng(0).normal(0.0, 0.05, content.shape), 0.0, 1.0)
    # For V = A I + b exactly, each window's energy is at most epsilon * ||A||_F^2 (Levin et al. eq. 5),
    # so about 3e-7 per pixel for the content itself (A = identity, epsilon = 1e-7).
    assert 0.0 <= photorealism_energy(content, content) < 4e-7
    assert 0.0 <= photorealism_energy(affine_recolouring(content), content) < 4e-7
    assert photorealism_energy(noisy, content) > 1e-2


@pytest.mark.parametrize("number", [38, 56])
def test_the_content_photos_own_energy_is_tiny_and_not_negative_where_the_quadratic_form_went_negative(
        example_pair, number):
    # At 500 px the quadratic form V^T L V gave -8.8e-7 (pair 38) and -4.4e-6 (pair 56): L inverts
    # window covariances as small as epsilon / 9, and the form subtracts numbers of order 1.
    content = example_pair(number, 500).content
    assert 0.0 <= photorealism_energy(content, content) < 4e-7


def test_the_energy_is_the_laplacians_quadratic_form(example_pair):
    rng = np.random.default_rng(5)
    content, output = rng.uniform(size=(20, 30, 3)), rng.uniform(size=(20, 30, 3))
    assert photorealism_energy(output, content, epsilon=1e-3) == pytest.approx(
        quadratic_form_energy(output, content, epsilon=1e-3), rel=1e-12)
    pair = example_pair(9, 64)
    reference = colour_statistics_transfer(pair.content, pair.style, pair.content_labels, pair.style_labels)
    assert photorealism_energy(reference, pair.content) == pytest.approx(
        quadratic_form_energy(reference, pair.content), rel=1e-6)
    grey = np.full_like(pair.content, 0.5)
    assert photorealism_energy(grey, pair.content) == pytest.approx(0.0, abs=1e-12)


def test_radius_widens_the_windows_and_images_of_other_shapes_are_rejected(example_pair):
    content = example_pair(9, 64).content
    shuffled = np.random.default_rng(0).permutation(content.reshape(-1, 3)).reshape(content.shape)
    # More pixels per window for the same 12 coefficients: the fit leaves more of a shuffle unexplained.
    assert photorealism_energy(shuffled, content, radius=2) > photorealism_energy(shuffled, content, radius=1) > 1e-2
    with pytest.raises(ValueError, match="must both be"):
        photorealism_energy(content[1:], content)


# --- all together ----------------------------------------------------------------------------------

def test_evaluate_output_of_the_content_against_itself(example_pair):
    pair = example_pair(14, 80)
    scores = evaluate_output(pair.content, pair.content, pair.content, pair.content_labels, pair.content_labels)
    assert set(scores) == {"style_distance", "ssim", "photorealism_energy"}
    assert scores["style_distance"] == pytest.approx(0.0, abs=1e-6)
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert scores["photorealism_energy"] < 4e-7


def test_evaluate_output_ranks_content_reference_and_noise(example_pair):
    pair = example_pair(55, 64)
    reference = colour_statistics_transfer(pair.content, pair.style, pair.content_labels, pair.style_labels)
    noisy = np.clip(reference + np.random.default_rng(0).normal(0.0, 0.05, reference.shape), 0.0, 1.0)

    def scores(image):
        return evaluate_output(image, pair.content, pair.style, pair.content_labels, pair.style_labels)

    content_scores, reference_scores, noisy_scores = scores(pair.content), scores(reference), scores(noisy)
    assert reference_scores["style_distance"] < content_scores["style_distance"]
    assert noisy_scores["ssim"] < reference_scores["ssim"] < content_scores["ssim"]
    assert content_scores["photorealism_energy"] < reference_scores["photorealism_energy"] \
        < noisy_scores["photorealism_energy"]
